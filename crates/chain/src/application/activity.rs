//! What a validator has seen of consensus: the highest view, its leader, and for each validator
//! its latest vote, the finalizations it was not seen voting in, and the evidence of faults
//! Simplex found against it. Operators read this in the status; nothing decides on it.

use crate::consensus::{Activity, EPOCH, Elector, Scheme};
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use commonware_consensus::Viewable as _;
use commonware_consensus::simplex::elector::{Config as _, Elector as _, RoundRobinElector};
use commonware_consensus::simplex::types::Attributable as _;
use commonware_consensus::types::{Round, View};
use commonware_utils::ordered::Set;
use std::time::SystemTime;

/// One consensus event, reduced to what the status needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A validator's vote (notarize, nullify or finalize) in a view.
    Vote { signer: u32, view: u64 },
    /// A certificate (notarization, nullification, finalization) for a view.
    Certificate { view: u64 },
    /// A finalization certificate for a view.
    Finalization { view: u64 },
    /// Proof that a validator signed conflicting messages in a view.
    Fault { signer: u32, view: u64 },
}

impl Observed {
    /// Reduces a Simplex activity.
    pub fn from_activity(activity: &Activity) -> Self {
        let view = activity.view().get();
        match activity {
            Activity::Notarize(vote) => Self::Vote { signer: vote.signer().get(), view },
            Activity::Nullify(vote) => Self::Vote { signer: vote.signer().get(), view },
            Activity::Finalize(vote) => Self::Vote { signer: vote.signer().get(), view },
            Activity::Notarization(_) | Activity::Certification(_) | Activity::Nullification(_) => {
                Self::Certificate { view }
            }
            Activity::Finalization(_) => Self::Finalization { view },
            Activity::ConflictingNotarize(evidence) => Self::Fault { signer: evidence.signer().get(), view },
            Activity::ConflictingFinalize(evidence) => Self::Fault { signer: evidence.signer().get(), view },
            Activity::NullifyFinalize(evidence) => Self::Fault { signer: evidence.signer().get(), view },
        }
    }
}

/// What this validator has seen of one validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorActivity {
    pub key: ValidatorKey,
    /// The highest view in which a vote of this validator was seen (0: none yet).
    pub last_vote_view: u64,
    /// When that vote was seen, by this validator's clock.
    pub last_vote_at: Option<SystemTime>,
    /// Finalizations of views in which no vote of this validator had been seen.
    pub missed_finalizations: u64,
    /// Pieces of evidence that this validator signed conflicting messages.
    pub faults: u64,
}

/// Consensus as this validator has seen it.
#[derive(Debug, Clone)]
pub struct ConsensusActivity {
    /// In Simplex's participant order (the sorted validator keys).
    validators: Vec<ValidatorActivity>,
    elector: RoundRobinElector<Scheme>,
    view: u64,
    evidence: u64,
}

impl ConsensusActivity {
    pub fn new(genesis: &Genesis) -> Self {
        let participants = Set::try_from(genesis.validators().to_vec()).expect("genesis validators are unique");
        let elector = Elector::default().build(&participants);
        let validators = participants
            .iter()
            .map(|key| ValidatorActivity {
                key: key.clone(),
                last_vote_view: 0,
                last_vote_at: None,
                missed_finalizations: 0,
                faults: 0,
            })
            .collect();
        Self { validators, elector, view: 0, evidence: 0 }
    }

    /// Records one event seen at `now`. Events naming an unknown signer are ignored (Simplex
    /// only reports verified activity, so this does not happen).
    pub fn record(&mut self, observed: Observed, now: SystemTime) {
        match observed {
            Observed::Vote { signer, view } => {
                self.view = self.view.max(view);
                if let Some(validator) = self.validators.get_mut(signer as usize)
                    && view >= validator.last_vote_view
                {
                    validator.last_vote_view = view;
                    validator.last_vote_at = Some(now);
                }
            }
            Observed::Certificate { view } => self.view = self.view.max(view),
            Observed::Finalization { view } => {
                self.view = self.view.max(view);
                for validator in &mut self.validators {
                    if validator.last_vote_view < view {
                        validator.missed_finalizations += 1;
                    }
                }
            }
            Observed::Fault { signer, view } => {
                self.view = self.view.max(view);
                self.evidence += 1;
                if let Some(validator) = self.validators.get_mut(signer as usize) {
                    validator.faults += 1;
                }
            }
        }
    }

    /// The highest view seen.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// The leader of `view`.
    pub fn leader(&self, view: u64) -> ValidatorKey {
        let participant = self.elector.elect(Round::new(EPOCH, View::new(view)), ());
        self.validators[usize::from(participant)].key.clone()
    }

    pub fn validators(&self) -> &[ValidatorActivity] {
        &self.validators
    }

    /// Pieces of evidence of conflicting messages seen, from any validator.
    pub fn evidence(&self) -> u64 {
        self.evidence
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{public_key, signer_from_seed};
    use std::time::Duration;

    fn genesis() -> Genesis {
        let validators = (0..4).map(|seed| public_key(&signer_from_seed(seed))).collect();
        Genesis::new(1, validators, vec![public_key(&signer_from_seed(9))], 0).unwrap()
    }

    #[test]
    fn tracks_views_votes_misses_and_faults() {
        let mut activity = ConsensusActivity::new(&genesis());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        activity.record(Observed::Vote { signer: 0, view: 3 }, at);
        activity.record(Observed::Vote { signer: 1, view: 3 }, at);
        activity.record(Observed::Vote { signer: 1, view: 2 }, at + Duration::from_secs(1));
        activity.record(Observed::Finalization { view: 3 }, at);
        activity.record(Observed::Fault { signer: 2, view: 4 }, at);
        assert_eq!(activity.view(), 4);
        assert_eq!(activity.evidence(), 1);
        let validators = activity.validators();
        assert_eq!(validators[1].last_vote_view, 3, "an older vote does not move the latest back");
        assert_eq!(validators[1].last_vote_at, Some(at));
        assert_eq!(validators.iter().map(|v| v.missed_finalizations).collect::<Vec<_>>(), [0, 0, 1, 1]);
        assert_eq!(validators.iter().map(|v| v.faults).collect::<Vec<_>>(), [0, 0, 1, 0]);
    }

    #[test]
    fn leaders_rotate_through_every_validator() {
        let activity = ConsensusActivity::new(&genesis());
        let leaders: std::collections::BTreeSet<_> = (1..=4).map(|view| activity.leader(view)).collect();
        assert_eq!(leaders.len(), 4);
        assert_eq!(activity.leader(1), activity.leader(5));
    }
}
