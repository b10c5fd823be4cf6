//! What to do with an object whose owners have been looked up: upstream's
//! `attemptToDeleteItem` decision, as a pure function.

use super::graph::{FOREGROUND, ORPHAN};

/// The state of one owner, as `classifyReferences` sorts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefState {
    /// The owner exists and is not waiting for its dependents' deletion.
    Solid,
    /// No object with the reference's apiVersion, kind, name (in the dependent's namespace
    /// for a namespaced kind) and UID exists.
    Dangling,
    /// The owner is being deleted in the foreground (deletionTimestamp and the
    /// `foregroundDeletion` finalizer).
    Waiting,
}

/// The outcome for one dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do.
    Keep,
    /// A solid owner remains: drop the references (by owner UID) to absent owners and to
    /// owners waiting for their dependents, which would otherwise wait for this object forever.
    RemoveRefs(Vec<String>),
    /// No solid owner, an owner waits for its dependents, and this object has dependents of its
    /// own: delete it in the foreground too. `unblock`: one of its dependents is itself
    /// deleting its dependents (a possible cycle), so first make this object's own references
    /// non-blocking.
    DeleteForeground { unblock: bool },
    /// No solid owner: delete with this propagation policy (the object's own pending
    /// `orphan` or `foregroundDeletion` finalizer is honoured, Background otherwise).
    Delete(&'static str),
}

/// Decides for an object with `refs` (owner UID and state, in reference order), whether it
/// has dependents, whether one of them is deleting its dependents, and its finalizers.
pub fn decide(refs: &[(String, RefState)], has_dependents: bool, dependent_deleting: bool, finalizers: &[String]) -> Decision {
    if refs.is_empty() {
        return Decision::Keep;
    }
    let of = |s: RefState| refs.iter().filter(move |(_, st)| *st == s).map(|(u, _)| u.clone());
    let solid = of(RefState::Solid).count();
    let waiting: Vec<String> = of(RefState::Waiting).collect();
    if solid > 0 {
        let drop: Vec<String> = of(RefState::Dangling).chain(waiting).collect();
        return if drop.is_empty() { Decision::Keep } else { Decision::RemoveRefs(drop) };
    }
    if !waiting.is_empty() && has_dependents {
        return Decision::DeleteForeground { unblock: dependent_deleting };
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    Decision::Delete(if has(ORPHAN) {
        "Orphan"
    } else if has(FOREGROUND) {
        "Foreground"
    } else {
        "Background"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use RefState::*;

    fn refs(states: &[RefState]) -> Vec<(String, RefState)> {
        states.iter().enumerate().map(|(i, s)| (format!("u{i}"), *s)).collect()
    }

    #[test]
    fn no_owners_nothing_to_do() {
        assert_eq!(decide(&[], true, false, &[]), Decision::Keep);
    }

    #[test]
    fn a_solid_owner_keeps_the_object_and_loses_only_dead_references() {
        assert_eq!(decide(&refs(&[Solid]), false, false, &[]), Decision::Keep);
        assert_eq!(decide(&refs(&[Dangling, Solid]), false, false, &[]), Decision::RemoveRefs(vec!["u0".into()]));
        assert_eq!(decide(&refs(&[Waiting, Solid, Dangling]), true, false, &[]), Decision::RemoveRefs(vec!["u2".into(), "u0".into()]));
    }

    #[test]
    fn all_owners_gone_deletes_in_the_background() {
        assert_eq!(decide(&refs(&[Dangling]), false, false, &[]), Decision::Delete("Background"));
        assert_eq!(decide(&refs(&[Dangling, Dangling]), true, false, &[]), Decision::Delete("Background"));
    }

    #[test]
    fn pending_finalizers_choose_the_propagation() {
        assert_eq!(decide(&refs(&[Dangling]), false, false, &["orphan".into()]), Decision::Delete("Orphan"));
        assert_eq!(decide(&refs(&[Dangling]), false, false, &["foregroundDeletion".into()]), Decision::Delete("Foreground"));
    }

    #[test]
    fn waiting_owners() {
        // No dependents of its own: a plain delete.
        assert_eq!(decide(&refs(&[Waiting]), false, false, &[]), Decision::Delete("Background"));
        assert_eq!(decide(&refs(&[Waiting, Dangling]), false, false, &[]), Decision::Delete("Background"));
        // With dependents: foreground, unblocking its own references when a dependent also
        // deletes its dependents.
        assert_eq!(decide(&refs(&[Waiting]), true, false, &[]), Decision::DeleteForeground { unblock: false });
        assert_eq!(decide(&refs(&[Waiting]), true, true, &[]), Decision::DeleteForeground { unblock: true });
    }
}
