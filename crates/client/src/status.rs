//! The status a validator reports (`GET /v1/status`).

use crate::error::ClientError;
use crate::wire::Reader;
use serde_json::Value;

/// One validator's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    pub chain_id: u64,
    /// The answering validator's key (hex).
    pub validator: String,
    /// The height of the last finalized block.
    pub height: u64,
    pub finalized_block: String,
    pub state_digest: String,
    pub view: u64,
    pub leader: String,
    pub mempool_requests: u64,
    pub requests_finalized: u64,
    pub blocks_refused: u64,
    pub evidence: u64,
    /// How many faulty validators the validator set tolerates (`n = 3f + 1`).
    pub faults_tolerated: u64,
    /// How many validators' votes make a certificate (`n - f`).
    pub quorum: u64,
    pub validators: Vec<ValidatorActivity>,
    /// The answer as sent, for printing it whole.
    pub json: Value,
}

/// What the answering validator knows of one validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorActivity {
    pub key: String,
    pub p2p: String,
    pub api: String,
    pub last_vote_view: u64,
    /// Milliseconds since its last vote was seen, if one was.
    pub last_seen_ms: Option<u64>,
    pub missed_finalizations: u64,
    pub faults: u64,
    /// Whether this is the answering validator.
    pub is_self: bool,
}

impl ClusterStatus {
    pub(crate) fn from_json(reader: &Reader<'_>, value: &Value) -> Result<Self, ClientError> {
        let object = reader.object(value, "the status")?;
        let text = |name: &str| reader.text(object, name).map(str::to_string);
        let validators = reader
            .list(object, "validators")?
            .iter()
            .map(|entry| {
                let entry = reader.object(entry, "a validator")?;
                let text = |name: &str| reader.text(entry, name).map(str::to_string);
                let last_seen_ms = match reader.field(entry, "last_seen_ms")? {
                    Value::Null => None,
                    seen => Some(u64::try_from(reader.unsigned(seen, "last_seen_ms")?).unwrap_or(u64::MAX)),
                };
                Ok(ValidatorActivity {
                    key: text("key")?,
                    p2p: text("p2p")?,
                    api: text("api")?,
                    last_vote_view: reader.u64(entry, "last_vote_view")?,
                    last_seen_ms,
                    missed_finalizations: reader.u64(entry, "missed_finalizations")?,
                    faults: reader.u64(entry, "faults")?,
                    is_self: reader
                        .field(entry, "self")?
                        .as_bool()
                        .ok_or_else(|| ClientError::invalid_answer(reader.validator, "self is not a boolean"))?,
                })
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        // A validator older than these two fields: the genesis rule gives them from the set's size.
        let n = validators.len() as u64;
        let faults_tolerated = match object.get("faults_tolerated") {
            Some(_) => reader.u64(object, "faults_tolerated")?,
            None => n.saturating_sub(1) / 3,
        };
        let quorum = match object.get("quorum") {
            Some(_) => reader.u64(object, "quorum")?,
            None => n - faults_tolerated,
        };
        Ok(Self {
            chain_id: reader.u64(object, "chain_id")?,
            validator: text("validator")?,
            height: reader.u64(object, "height")?,
            finalized_block: text("finalized_block")?,
            state_digest: text("state_digest")?,
            view: reader.u64(object, "view")?,
            leader: text("leader")?,
            mempool_requests: reader.u64(object, "mempool_requests")?,
            requests_finalized: reader.u64(object, "requests_finalized")?,
            blocks_refused: reader.u64(object, "blocks_refused")?,
            evidence: reader.u64(object, "evidence")?,
            faults_tolerated,
            quorum,
            validators,
            json: value.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_parses() {
        let value = json!({
            "chain_id": "7", "validator": "aa", "height": "12", "finalized_block": "bb",
            "state_digest": "cc", "view": "40", "leader": "aa", "mempool_requests": 3,
            "requests_finalized": "9", "blocks_refused": 0, "evidence": "0",
            "validators": [
                {"key": "aa", "p2p": "127.0.0.1:1", "api": "http://127.0.0.1:2", "last_vote_view": "40",
                 "last_seen_ms": 15, "missed_finalizations": "0", "faults": "0", "self": true},
                {"key": "dd", "p2p": "127.0.0.1:3", "api": "http://127.0.0.1:4", "last_vote_view": "0",
                 "last_seen_ms": null, "missed_finalizations": "2", "faults": "1", "self": false},
            ],
        });
        let status = ClusterStatus::from_json(&Reader { validator: "v" }, &value).unwrap();
        assert_eq!((status.chain_id, status.height, status.view, status.mempool_requests), (7, 12, 40, 3));
        assert_eq!(status.validators.len(), 2);
        // No faults_tolerated or quorum (an older validator): two validators tolerate none.
        assert_eq!((status.faults_tolerated, status.quorum), (0, 2));
        assert_eq!(status.validators[0].last_seen_ms, Some(15));
        assert!(status.validators[0].is_self);
        assert_eq!(status.validators[1].last_seen_ms, None);
        assert_eq!(status.validators[1].faults, 1);

        let mut with_fields = value.clone();
        with_fields["faults_tolerated"] = json!(1);
        with_fields["quorum"] = json!(3);
        let status = ClusterStatus::from_json(&Reader { validator: "v" }, &with_fields).unwrap();
        assert_eq!((status.faults_tolerated, status.quorum), (1, 3));
        with_fields["quorum"] = json!("three");
        assert_eq!(
            ClusterStatus::from_json(&Reader { validator: "v" }, &with_fields).unwrap_err().code(),
            "invalid_answer"
        );

        let mut broken = value.clone();
        broken.as_object_mut().unwrap().remove("leader");
        assert_eq!(ClusterStatus::from_json(&Reader { validator: "v" }, &broken).unwrap_err().code(), "invalid_answer");
    }
}
