//! Which images each `docker save` or `docker load` request carries when several run at once.
//!
//! The daemon handles one save or load request at about one core's speed; on the testbed
//! (2 cores) three concurrent saves of independent images moved 1.6× the bytes per second of one
//! save, and three concurrent loads 1.5× those of one load. But every request carries all layers
//! of its images, so two requests for images FROM one large base each carry that base: splitting
//! them costs more than it gains. [`group`] splits only where the estimate says the concurrent
//! requests finish sooner, from the layers' sizes; without sizes it does not split at all.

use std::collections::BTreeSet;

/// How much faster several concurrent requests move bytes than one (1.5–1.6×, see the module's
/// doc).
const PARALLEL_THROUGHPUT: f64 = 1.6;

/// How many requests run at once at most.
pub const MAX_REQUESTS: usize = 3;

/// An image to move: its reference (or name), and its layers (digest, bytes) when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayers {
    pub reference: String,
    pub layers: Option<Vec<(String, u64)>>,
}

/// Splits `candidates` into at most `streams` groups, one request each, keeping the given
/// order within a group. A group's cost is the bytes of the distinct layers of its images; an
/// image joins the group that keeps `max(largest group, all bytes / PARALLEL_THROUGHPUT)`
/// lowest (the estimated time), preferring the group it adds the fewest bytes to.
pub fn group(candidates: &[ImageLayers], streams: usize) -> Vec<Vec<String>> {
    if candidates.is_empty() {
        return Vec::new();
    }
    let all = || vec![candidates.iter().map(|c| c.reference.clone()).collect()];
    let Some(layers) = candidates
        .iter()
        .map(|c| c.layers.as_ref())
        .collect::<Option<Vec<_>>>()
    else {
        return all();
    };
    if streams < 2 || candidates.len() < 2 {
        return all();
    }
    let size = |layers: &[(String, u64)]| layers.iter().map(|(_, bytes)| bytes).sum::<u64>();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(layers[i])));

    let mut groups: Vec<Group> = (0..streams.min(candidates.len()))
        .map(|_| Group::default())
        .collect();
    for index in order {
        let image = layers[index];
        let best = (0..groups.len())
            .min_by(|&a, &b| {
                let (score_a, added_a) = score(&groups, a, image);
                let (score_b, added_b) = score(&groups, b, image);
                score_a.total_cmp(&score_b).then(added_a.cmp(&added_b))
            })
            .expect("at least one group");
        groups[best].add(index, image);
    }
    groups
        .into_iter()
        .filter(|g| !g.members.is_empty())
        .map(|mut g| {
            g.members.sort_unstable();
            g.members
                .into_iter()
                .map(|i| candidates[i].reference.clone())
                .collect()
        })
        .collect()
}

#[derive(Debug, Default)]
struct Group {
    layers: BTreeSet<String>,
    bytes: u64,
    members: Vec<usize>,
}

impl Group {
    fn added_by(&self, image: &[(String, u64)]) -> u64 {
        let mut seen = BTreeSet::new();
        image
            .iter()
            .filter(|(id, _)| !self.layers.contains(id) && seen.insert(id))
            .map(|(_, bytes)| bytes)
            .sum()
    }

    fn add(&mut self, index: usize, image: &[(String, u64)]) {
        self.bytes += self.added_by(image);
        self.layers.extend(image.iter().map(|(id, _)| id.clone()));
        self.members.push(index);
    }
}

/// The estimated time if `image` joins group `target`, and the bytes it adds there.
fn score(groups: &[Group], target: usize, image: &[(String, u64)]) -> (f64, u64) {
    let added = groups[target].added_by(image);
    let largest = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i == target {
                g.bytes + added
            } else {
                g.bytes
            }
        })
        .max()
        .unwrap_or(0);
    let total: u64 = groups.iter().map(|g| g.bytes).sum::<u64>() + added;
    let estimate = (largest as f64).max(total as f64 / PARALLEL_THROUGHPUT);
    (estimate, added)
}

/// Layer sizes for an image's diff ids from its history (`docker history`, oldest first): the
/// history has one entry per instruction, some without a layer. Entries with bytes are layers,
/// so when their number matches the diff ids they pair up in order; when every entry is a layer
/// they pair up too. Anything else (layers of zero bytes among entries without layers) is
/// ambiguous: `None`.
pub fn align_layer_sizes(diff_ids: &[String], history: &[u64]) -> Option<Vec<(String, u64)>> {
    let with_bytes: Vec<u64> = history.iter().copied().filter(|&b| b > 0).collect();
    let sizes = if with_bytes.len() == diff_ids.len() {
        with_bytes
    } else if history.len() == diff_ids.len() {
        history.to_vec()
    } else {
        return None;
    };
    Some(diff_ids.iter().cloned().zip(sizes).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    fn image(reference: &str, layers: &[(&str, u64)]) -> ImageLayers {
        ImageLayers {
            reference: reference.into(),
            layers: Some(
                layers
                    .iter()
                    .map(|(id, mb)| ((*id).into(), mb * MB))
                    .collect(),
            ),
        }
    }

    #[test]
    fn independent_images_are_saved_in_parallel() {
        let images = [
            image("one", &[("busybox", 2), ("one-a", 63), ("one-b", 40)]),
            image("two", &[("busybox", 2), ("two-a", 63), ("two-b", 40)]),
            image("three", &[("busybox", 2), ("three-a", 63), ("three-b", 40)]),
        ];
        assert_eq!(group(&images, 3), [["one"], ["two"], ["three"]]);
        let two_streams = group(&images, 2);
        assert_eq!(two_streams.len(), 2, "{two_streams:?}");
    }

    #[test]
    fn images_on_one_large_base_stay_in_one_request() {
        let images = [
            image("base", &[("debian", 400)]),
            image("api", &[("debian", 400), ("api", 10)]),
            image("worker", &[("debian", 400), ("worker", 12)]),
        ];
        assert_eq!(group(&images, 3), [["base", "api", "worker"]]);
    }

    #[test]
    fn a_shared_base_and_an_independent_image_split_along_the_base() {
        let images = [
            image("api", &[("debian", 300), ("api", 10)]),
            image("tool", &[("alpine", 8), ("tool", 280)]),
            image("worker", &[("debian", 300), ("worker", 12)]),
        ];
        assert_eq!(group(&images, 3), vec![vec!["api", "worker"], vec!["tool"]]);
    }

    #[test]
    fn unknown_sizes_or_one_stream_or_one_image_are_one_request() {
        let mut images = vec![
            image("one", &[("a", 100)]),
            ImageLayers {
                reference: "two".into(),
                layers: None,
            },
        ];
        assert_eq!(group(&images, 3), [["one", "two"]]);
        images.pop();
        assert_eq!(group(&images, 3), [["one"]]);
        images.push(image("three", &[("b", 100)]));
        assert_eq!(group(&images, 1), [["one", "three"]]);
        assert!(group(&[], 3).is_empty());
    }

    #[test]
    fn layer_sizes_pair_up_with_diff_ids_only_when_unambiguous() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        // ENV and CMD entries carry no layer and no bytes.
        assert_eq!(
            align_layer_sizes(&ids, &[5, 0, 7, 0]),
            Some(vec![("a".into(), 5), ("b".into(), 7)])
        );
        // Every entry is a layer, one of them empty.
        assert_eq!(
            align_layer_sizes(&ids, &[5, 0]),
            Some(vec![("a".into(), 5), ("b".into(), 0)])
        );
        // An empty layer among entries without layers: which zero is the layer?
        assert_eq!(align_layer_sizes(&ids, &[5, 0, 0]), None);
        assert_eq!(align_layer_sizes(&ids, &[]), None);
    }
}
