// buildopt for Jenkins pipelines: `buildopt(level: 'ci', tags: ['{short_sha}'], push: true)`.
// Runs `buildopt ci` in the workspace (or `dir`), records the JUnit report, archives the JSON and
// HTML reports, and sets the build result from buildopt's exit code. Secrets come from Jenkins
// credentials and reach buildopt as environment variables only: they are never part of the
// command line, so they are neither echoed nor visible in the process list.
// See buildopt.txt beside this file for every argument.

def call(Map args = [:]) {
    Map known = [
        level: 'String', tags: 'List', push: 'Boolean', keepGoing: 'Boolean', force: 'Boolean',
        jobs: 'Integer', only: 'List', dir: 'String', binary: 'String', extraArgs: 'List',
        credentialsId: 'String', slackWebhookCredentialsId: 'String', slackOn: 'String',
        githubTokenCredentialsId: 'String', gitlabTokenCredentialsId: 'String',
        policyResult: 'String', propagate: 'Boolean', cacheDir: 'String',
        scanLevel: 'String', failOnCritical: 'Boolean', failOnHigh: 'Boolean',
        ignoreUnfixed: 'Boolean', ignoreFile: 'String', scanner: 'String',
    ]
    List unknown = args.keySet().findAll { !known.containsKey(it) } as List
    if (unknown) {
        error("buildopt: unknown argument(s) ${unknown.sort().join(', ')}; known: ${known.keySet().sort().join(', ')}")
    }
    String policyResult = (args.policyResult ?: 'UNSTABLE').toString().toUpperCase()
    if (!(policyResult in ['UNSTABLE', 'FAILURE'])) {
        error("buildopt: policyResult must be UNSTABLE or FAILURE, not ${args.policyResult}")
    }

    List<String> command = [(args.binary ?: 'buildopt').toString(), 'ci']
    if (args.level) {
        command += ['--level', args.level.toString()]
    }
    if (args.force) {
        command << '--force'
    }
    asList(args.tags).each { command += ['--tag', it.toString()] }
    if (args.push) {
        command << '--push'
    }
    if (args.jobs) {
        command += ['--jobs', args.jobs.toString()]
    }
    if (args.keepGoing) {
        command << '--keep-going'
    }
    asList(args.only).each { command += ['--only', it.toString()] }
    asList(args.extraArgs).each { command << it.toString() }

    List<String> environment = []
    if (args.slackOn) {
        environment << "BUILDOPT_SLACK_ON=${args.slackOn}".toString()
    }
    if (args.cacheDir) {
        environment << "BUILDOPT_CACHE_DIR=${args.cacheDir}".toString()
    }
    // The scan's policy: a value given here wins over the seed's FAIL_ON_* in the environment;
    // false is a value too, so the booleans are passed whenever they are given.
    if (args.scanLevel) {
        environment << "BUILDOPT_SCAN_LEVEL=${args.scanLevel}".toString()
    }
    if (args.failOnCritical != null) {
        environment << "BUILDOPT_FAIL_ON_CRITICAL=${args.failOnCritical as boolean}".toString()
    }
    if (args.failOnHigh != null) {
        environment << "BUILDOPT_FAIL_ON_HIGH=${args.failOnHigh as boolean}".toString()
    }
    if (args.ignoreUnfixed != null) {
        environment << "BUILDOPT_IGNORE_UNFIXED=${args.ignoreUnfixed as boolean}".toString()
    }
    if (args.ignoreFile) {
        environment << "BUILDOPT_IGNORE_FILE=${args.ignoreFile}".toString()
    }
    if (args.scanner) {
        environment << "BUILDOPT_SCANNER=${args.scanner}".toString()
    }
    List bindings = []
    if (args.credentialsId) {
        bindings << usernamePassword(credentialsId: args.credentialsId,
            usernameVariable: 'BUILDOPT_REGISTRY_USER', passwordVariable: 'BUILDOPT_REGISTRY_PASSWORD')
    }
    if (args.slackWebhookCredentialsId) {
        bindings << string(credentialsId: args.slackWebhookCredentialsId, variable: 'BUILDOPT_SLACK_WEBHOOK')
    }
    if (args.githubTokenCredentialsId) {
        bindings << string(credentialsId: args.githubTokenCredentialsId, variable: 'BUILDOPT_GITHUB_TOKEN')
    }
    if (args.gitlabTokenCredentialsId) {
        bindings << string(credentialsId: args.gitlabTokenCredentialsId, variable: 'BUILDOPT_GITLAB_TOKEN')
    }

    String script = command.collect { shellQuote(it) }.join(' ')
    int status = 0
    dir(args.dir ?: '.') {
        withEnv(environment) {
            withCredentials(bindings) {
                status = sh(script: script, returnStatus: true, label: 'buildopt ci')
            }
        }
        junit(allowEmptyResults: true, testResults: 'buildopt-junit.xml')
        archiveArtifacts(artifacts: 'buildopt-report.json,buildopt-report.html', allowEmptyArchive: true,
            fingerprint: false)
    }
    applyResult(status, policyResult, args.propagate == null ? true : args.propagate as boolean)
    return status
}

// Maps buildopt's exit code onto the build result. With `propagate` (the default) a failure
// stops the pipeline with `error`; without it the result is set and the pipeline goes on.
private void applyResult(int status, String policyResult, boolean propagate) {
    String message
    String result
    switch (status) {
        case 0:
            return
        case 1:
            message = 'buildopt: an image failed to build (exit 1); see the JUnit report and buildopt-report.html'
            result = 'FAILURE'
            break
        case 2:
            message = 'buildopt: usage or configuration error (exit 2): check the arguments and buildopt.toml'
            result = 'FAILURE'
            break
        case 3:
            message = 'buildopt: a policy gate failed (exit 3): findings over the threshold'
            result = policyResult
            break
        case 4:
            message = 'buildopt: the environment is not usable (exit 4): no Docker daemon, no git, or not a repository'
            result = 'FAILURE'
            break
        default:
            message = "buildopt: exited with ${status}".toString()
            result = 'FAILURE'
    }
    if (result == 'UNSTABLE') {
        unstable(message)
    } else if (propagate) {
        error(message)
    } else {
        echo(message)
        currentBuild.result = 'FAILURE'
    }
}

private static List asList(value) {
    if (value == null) {
        return []
    }
    if (value instanceof Collection) {
        return value as List
    }
    return value.toString().split(/[,\n]/).collect { it.trim() }.findAll { it }
}

// Single-quotes one word for sh.
private static String shellQuote(String word) {
    return "'" + word.replace("'", "'\"'\"'") + "'"
}
