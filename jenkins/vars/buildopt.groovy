// buildopt for Jenkins pipelines: `buildopt(level: 'ci', tags: ['{short_sha}'], push: true)`.
// Sets up the vulnerability database (`buildopt scan --setup`), runs `buildopt ci` in the
// workspace (or `dir`), records the JUnit report, archives the reports, the scan's SARIF and the
// SBOM, hands the SARIF to Warnings NG when that plugin is installed, and sets the build result
// from buildopt's exit code. Secrets come from Jenkins
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
        vulndbSetup: 'Boolean', vulndbDir: 'String', vulndbEcosystems: 'List',
    ]
    List unknown = args.keySet().findAll { !known.containsKey(it) } as List
    if (unknown) {
        error("buildopt: unknown argument(s) ${unknown.sort().join(', ')}; known: ${known.keySet().sort().join(', ')}")
    }
    String policyResult = (args.policyResult ?: 'UNSTABLE').toString().toUpperCase()
    if (!(policyResult in ['UNSTABLE', 'FAILURE'])) {
        error("buildopt: policyResult must be UNSTABLE or FAILURE, not ${args.policyResult}")
    }

    String binary = (args.binary ?: 'buildopt').toString()
    // `--for-ci`: the setup downloads nothing when `buildopt ci` would not scan (its level).
    List<String> setup = [binary, 'scan', '--setup', '--for-ci']
    asList(args.vulndbEcosystems).each { setup += ['--ecosystem', it.toString()] }
    List<String> command = [binary, 'ci']
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
    // The level goes to the setup too, which decides from it whether the run scans.
    if (args.level) {
        environment << "BUILDOPT_LEVEL=${args.level}".toString()
    }
    if (args.slackOn) {
        environment << "BUILDOPT_SLACK_ON=${args.slackOn}".toString()
    }
    if (args.cacheDir) {
        environment << "BUILDOPT_CACHE_DIR=${args.cacheDir}".toString()
    }
    if (args.vulndbDir) {
        environment << "BUILDOPT_VULNDB_DIR=${args.vulndbDir}".toString()
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

    boolean runSetup = args.vulndbSetup == null ? true : args.vulndbSetup as boolean
    int status = 0
    dir(args.dir ?: '.') {
        withEnv(environment) {
            if (runSetup) {
                setupVulnerabilityDatabase(setup)
            }
            withCredentials(bindings) {
                status = sh(script: shellCommand(command), returnStatus: true, label: 'buildopt ci')
            }
        }
        // The build's results, then the vulnerability scan's (written when the run scanned).
        junit(allowEmptyResults: true, testResults: 'buildopt-junit.xml,buildopt-scan-junit.xml')
        archiveArtifacts(artifacts: 'buildopt-report.json,buildopt-report.html,buildopt-scan.sarif,buildopt-sbom.cdx.json',
            allowEmptyArchive: true, fingerprint: false)
        recordScanFindings()
    }
    applyResult(status, policyResult, args.propagate == null ? true : args.propagate as boolean)
    return status
}

// Downloads or refreshes the vulnerability database. A failure is reported, not fatal: `buildopt
// ci` then reports the images "not scanned" and exits 4 when a FAIL_ON gate is on, so the run
// never passes silently. It runs without the credentials, which it does not need.
private void setupVulnerabilityDatabase(List<String> setup) {
    int status = sh(script: shellCommand(setup), returnStatus: true, label: 'buildopt scan --setup')
    if (status != 0) {
        echo("buildopt: the vulnerability database could not be set up (exit ${status}); " +
            'buildopt ci reports the images as not scanned, and a FAIL_ON gate fails the run (exit 4)')
    }
}

// Hands the scan's SARIF to the Warnings NG plugin. Without the plugin its steps do not exist,
// which a pipeline reports as NoSuchMethodError; the SARIF is archived all the same.
private void recordScanFindings() {
    if (!fileExists('buildopt-scan.sarif')) {
        return
    }
    try {
        recordIssues(enabledForFailure: true,
            tool: sarif(pattern: 'buildopt-scan.sarif', id: 'buildopt', name: 'buildopt scan'))
    } catch (NoSuchMethodError ignored) {
        echo('buildopt: the Warnings NG plugin is not installed, so buildopt-scan.sarif is archived but not recorded')
    }
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
            message = 'buildopt: the environment is not usable (exit 4): no Docker daemon, no git, not a repository, ' +
                'or no vulnerability database while a FAIL_ON gate is on'
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

// One command line for sh, every word quoted.
private static String shellCommand(List<String> words) {
    return words.collect { shellQuote(it) }.join(' ')
}

// Single-quotes one word for sh.
private static String shellQuote(String word) {
    return "'" + word.replace("'", "'\"'\"'") + "'"
}
