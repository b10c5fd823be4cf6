//! Completion indexes of Indexed Jobs: the `batch.kubernetes.io/job-completion-index`
//! annotation of each pod, and sets of indexes kept as ordered intervals and written as
//! upstream writes `status.completedIndexes` and `status.failedIndexes` ("0-2,4", "1,2").

use std::collections::BTreeSet;

use serde_json::Value;

/// The annotation (and, since PodIndexLabel, label) carrying a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// How many times pods of an index failed before (backoffLimitPerIndex).
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of an index that a podFailurePolicy Ignore rule did not count.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

/// A pod's completion index; None when missing or not a non-negative integer.
pub fn completion_index(pod: &Value) -> Option<usize> {
    let s = pod["metadata"]["annotations"][COMPLETION_INDEX].as_str()?;
    s.parse::<i64>().ok().filter(|i| *i >= 0).and_then(|i| usize::try_from(i).ok())
}

/// A pod's index when it is within `completions`.
pub fn valid_index(pod: &Value, completions: usize) -> Option<usize> {
    completion_index(pod).filter(|i| *i < completions)
}

/// A non-negative int32 annotation, 0 when absent or malformed (as upstream's parseInt32).
pub fn count_annotation(pod: &Value, key: &str) -> i64 {
    pod["metadata"]["annotations"][key].as_str().and_then(|s| s.parse::<i64>().ok()).filter(|n| (0..=i32::MAX as i64).contains(n)).unwrap_or(0)
}

/// Ordered, non-overlapping, non-adjacent closed intervals of indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(pub Vec<(usize, usize)>);

impl Intervals {
    /// Parses upstream's format, ignoring corrupt pieces and indexes `>= completions`.
    pub fn parse(s: &str, completions: usize) -> Intervals {
        let mut out: Vec<(usize, usize)> = Vec::new();
        if s.is_empty() {
            return Intervals(out);
        }
        for piece in s.split(',') {
            let mut lim = piece.split('-');
            let Some(Ok(first)) = lim.next().map(|f| f.parse::<usize>()) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match lim.next() {
                Some(l) => match l.parse::<usize>() {
                    Ok(l) => l.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            match out.last_mut() {
                Some(prev) if prev.1 + 1 == first => prev.1 = last,
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    /// This set plus `more` (merged, in order).
    pub fn merge(&self, more: &Intervals) -> Intervals {
        let mut all: Vec<(usize, usize)> = self.0.iter().chain(more.0.iter()).copied().collect();
        all.sort();
        let mut out: Vec<(usize, usize)> = Vec::new();
        for iv in all {
            match out.last_mut() {
                Some(prev) if iv.0 <= prev.1 + 1 => prev.1 = prev.1.max(iv.1),
                _ => out.push(iv),
            }
        }
        Intervals(out)
    }

    /// This set plus single indexes.
    pub fn with_indexes(&self, idx: impl IntoIterator<Item = usize>) -> Intervals {
        self.merge(&Intervals(idx.into_iter().map(|i| (i, i)).collect()))
    }

    pub fn total(&self) -> usize {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    pub fn has(&self, ix: usize) -> bool {
        self.0.iter().any(|(a, b)| *a <= ix && ix <= *b)
    }

    /// The `count` lowest indexes below `completions` not in this set.
    pub fn first_missing(&self, count: usize, completions: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(count);
        let mut candidate = 0;
        for (first, last) in &self.0 {
            while candidate < completions && out.len() < count && candidate < *first {
                out.push(candidate);
                candidate += 1;
            }
            candidate = candidate.max(last + 1);
        }
        while candidate < completions && out.len() < count {
            out.push(candidate);
            candidate += 1;
        }
        out
    }
}

impl std::fmt::Display for Intervals {
    /// "0-2,4": ranges of three or more with a dash, two neighbours with a comma.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
            if b > a {
                write!(f, "{}{b}", if *b == a + 1 { "," } else { "-" })?;
            }
        }
        Ok(())
    }
}

/// The distinct indexes of some pods.
pub fn indexes_of<'a>(pods: impl IntoIterator<Item = &'a Value>) -> BTreeSet<usize> {
    pods.into_iter().filter_map(completion_index).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_upstream() {
        assert_eq!(Intervals::default().with_indexes([0, 1, 2, 4]).to_string(), "0-2,4");
        assert_eq!(Intervals::default().with_indexes([1, 2]).to_string(), "1,2");
        assert_eq!(Intervals::default().with_indexes([5, 3, 9, 4, 7]).to_string(), "3-5,7,9");
        assert_eq!(Intervals::default().to_string(), "");
    }

    #[test]
    fn parses_merges_and_clips() {
        let iv = Intervals::parse("0-2,4,6-9", 8);
        assert_eq!(iv.0, vec![(0, 2), (4, 4), (6, 7)]);
        assert_eq!(iv.total(), 6);
        assert!(iv.has(4) && !iv.has(5) && !iv.has(8));
        // Corrupt pieces are skipped; adjacent pieces join.
        assert_eq!(Intervals::parse("0,x,1-2,3", 10).0, vec![(0, 3)]);
        assert_eq!(Intervals::parse("1,2", 10).to_string(), "1,2");
        assert_eq!(iv.with_indexes([3, 5]).to_string(), "0-7");
        assert_eq!(iv.first_missing(2, 8), vec![3, 5]);
        assert_eq!(Intervals::default().first_missing(3, 2), vec![0, 1]);
    }

    #[test]
    fn pod_indexes() {
        let pod = |v: &str| serde_json::json!({"metadata": {"annotations": {COMPLETION_INDEX: v}}});
        assert_eq!(completion_index(&pod("3")), Some(3));
        assert_eq!(completion_index(&pod("-1")), None);
        assert_eq!(completion_index(&pod("x")), None);
        assert_eq!(valid_index(&pod("3"), 3), None);
    }
}
