//! The etcd side of storage: create as a transaction, update and delete as compare-and-swap on
//! the mod revision (kube-apiserver's etcd3 store), ranged reads at a revision for paging.

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};

/// Errors of the etcd layer, mapped to API errors by the generic store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key already exists")]
    AlreadyExists,
    #[error("key not found")]
    NotFound,
    /// The compare-and-swap failed: the key now has this mod revision (0 when it is gone).
    #[error("compare-and-swap failed")]
    Conflict,
    /// The requested revision has been compacted away.
    #[error("required revision has been compacted")]
    Compacted,
    #[error("etcdserver: request is too large")]
    TooLarge,
    #[error("etcd: {0}")]
    Etcd(String),
}

impl From<etcd_client::Error> for StorageError {
    fn from(e: etcd_client::Error) -> Self {
        let s = e.to_string();
        if s.contains("compacted") {
            StorageError::Compacted
        } else if s.contains("request is too large") || s.contains("message length too large") {
            StorageError::TooLarge
        } else {
            StorageError::Etcd(s)
        }
    }
}

/// One stored value with the revision it was last modified at.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub create_revision: i64,
}

/// A tenant's view of etcd: every key it touches lies under `prefix`.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    prefix: String,
}

fn stored(kv: &etcd_client::KeyValue, strip: usize) -> Stored {
    Stored {
        key: String::from_utf8_lossy(&kv.key()[strip.min(kv.key().len())..]).into_owned(),
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
        create_revision: kv.create_revision(),
    }
}

impl Etcd {
    /// Connects to etcd; `prefix` is prepended to every key (no trailing slash).
    pub async fn connect(endpoints: &[String], prefix: &str, user: Option<(String, String)>) -> Result<Etcd, StorageError> {
        let mut opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_keep_alive(std::time::Duration::from_secs(30), std::time::Duration::from_secs(10));
        if let Some((u, p)) = user {
            // etcd's simple auth tokens expire after 5 idle minutes: re-authenticate on expiry.
            opts = opts.with_user(u, p).with_auto_token_refresh(true);
        }
        let client = Client::connect(endpoints, Some(opts)).await?;
        Ok(Etcd { client, prefix: prefix.trim_end_matches('/').to_string() })
    }

    /// The raw client, for the watch cache's single prefix watch and for compaction.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Full etcd key for a key relative to the prefix (which starts with `/`).
    pub fn full(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Creates `key` only if it does not exist; returns the new revision.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value, None)]);
        let resp = self.client.kv_client().txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists);
        }
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Reads one key (a linearizable read).
    pub async fn get(&self, key: &str) -> Result<Option<Stored>, StorageError> {
        let resp = self.client.kv_client().get(self.full(key), None).await?;
        Ok(resp.kvs().first().map(|kv| stored(kv, self.prefix.len())))
    }

    /// Replaces `key` if its mod revision is still `expected`; returns the new revision.
    pub async fn update(&self, key: &str, value: Vec<u8>, expected: i64) -> Result<i64, StorageError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(full.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::put(full, value, None)]);
        let resp = self.client.kv_client().txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::Conflict);
        }
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Deletes `key` if its mod revision is still `expected`; returns the deletion revision.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<i64, StorageError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(full.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::delete(full, None)]);
        let resp = self.client.kv_client().txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::Conflict);
        }
        let deleted = resp.op_responses().into_iter().any(|r| matches!(r, TxnOpResponse::Delete(d) if d.deleted() > 0));
        if !deleted {
            return Err(StorageError::NotFound);
        }
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Lists keys under `prefix` (relative), starting at `start` (inclusive, relative), at
    /// `revision` (0 = now), at most `limit` (0 = all). Returns the items, the revision read at
    /// and whether more remain.
    pub async fn range(
        &self,
        prefix: &str,
        start: Option<&str>,
        revision: i64,
        limit: i64,
    ) -> Result<(Vec<Stored>, i64, bool, i64), StorageError> {
        let full_prefix = self.full(prefix);
        let end = prefix_end(full_prefix.as_bytes());
        let from = match start {
            Some(s) => self.full(s),
            None => full_prefix.clone(),
        };
        let mut opts = GetOptions::new().with_range(end);
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        if limit > 0 {
            opts = opts.with_limit(limit);
        }
        let resp = self.client.kv_client().get(from, Some(opts)).await?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let items: Vec<Stored> = resp.kvs().iter().map(|kv| stored(kv, self.prefix.len())).collect();
        let more = resp.more();
        let count = resp.count();
        Ok((items, rev, more, count))
    }

    /// The current revision of the whole etcd keyspace.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        let resp = self
            .client
            .kv_client()
            .get(self.full("/"), Some(GetOptions::new().with_count_only()))
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Compacts etcd history up to `revision`.
    pub async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        self.client.kv_client().compact(revision, None).await?;
        Ok(())
    }
}

/// The smallest key greater than every key with this prefix (etcd's range end for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
