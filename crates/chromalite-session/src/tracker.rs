//! [`SessionTracker`]: sessions that outlive the process. Each is a small JSON file in
//! `chromalite-session/sessions/`, written atomically, so a restarted process (or a reloaded web
//! page) resumes its session by id with the collections it was using.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{SessionError, SessionResult};
use crate::lock;
use crate::model::SessionInfo;
use crate::store::write_atomic;

/// Active sessions of one store.
#[derive(Debug)]
pub struct SessionTracker {
    dir: PathBuf,
    embeddings_path: String,
    ttl: Duration,
    sessions: Mutex<HashMap<String, SessionInfo>>,
}

impl SessionTracker {
    /// Sessions of the store at `embeddings_path`, kept in `dir`, expiring after `ttl` idle.
    pub fn new(dir: &Path, embeddings_path: &Path, ttl: Duration) -> SessionResult<SessionTracker> {
        std::fs::create_dir_all(dir).map_err(|e| SessionError::io(dir, e))?;
        Ok(SessionTracker {
            dir: dir.to_path_buf(),
            embeddings_path: embeddings_path.display().to_string(),
            ttl,
            sessions: Mutex::default(),
        })
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn save(&self, info: &SessionInfo) -> SessionResult<()> {
        let path = self.file(&info.session_id);
        let bytes = serde_json::to_vec_pretty(info)
            .map_err(|e| SessionError::CorruptState { path: path.clone(), detail: e.to_string() })?;
        write_atomic(&path, &bytes).map_err(|e| SessionError::io(&path, e))
    }

    fn load(&self, id: &str) -> SessionResult<Option<SessionInfo>> {
        if !is_session_id(id) {
            return Ok(None);
        }
        let path = self.file(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SessionError::CorruptState { path, detail: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SessionError::io(path, e)),
        }
    }

    fn expired(&self, info: &SessionInfo, now: SystemTime) -> bool {
        now.duration_since(info.last_activity).unwrap_or_default() > self.ttl
    }

    /// Starts a session and records it on disk.
    pub fn start(&self) -> SessionResult<SessionInfo> {
        let now = SystemTime::now();
        let info = SessionInfo {
            session_id: chromalite_core::new_uuid(),
            embeddings_path: self.embeddings_path.clone(),
            created_at: now,
            last_activity: now,
            active_connections: Vec::new(),
        };
        self.save(&info)?;
        lock(&self.sessions).insert(info.session_id.clone(), info.clone());
        Ok(info)
    }

    /// The session `id`, from memory or from disk (after a restart); `UnknownSession` when it
    /// never existed, was ended or has expired. Counts as activity.
    pub fn resume(&self, id: &str) -> SessionResult<SessionInfo> {
        self.touch(id, None)
    }

    /// Records activity, and the use of `collection` when given.
    pub fn touch(&self, id: &str, collection: Option<&str>) -> SessionResult<SessionInfo> {
        let mut sessions = lock(&self.sessions);
        let mut info = match sessions.get(id) {
            Some(i) => i.clone(),
            None => self.load(id)?.ok_or_else(|| SessionError::UnknownSession(id.into()))?,
        };
        let now = SystemTime::now();
        if self.expired(&info, now) {
            sessions.remove(id);
            let _ = std::fs::remove_file(self.file(id));
            return Err(SessionError::UnknownSession(id.into()));
        }
        info.last_activity = now;
        if let Some(c) = collection.filter(|c| !info.active_connections.iter().any(|a| a == c)) {
            info.active_connections.push(c.to_owned());
        }
        self.save(&info)?;
        sessions.insert(id.to_owned(), info.clone());
        Ok(info)
    }

    /// Removes `collection` from every session (its connection was closed).
    pub fn forget_collection(&self, collection: &str) {
        let mut sessions = lock(&self.sessions);
        for info in sessions.values_mut() {
            if let Some(pos) = info.active_connections.iter().position(|c| c == collection) {
                info.active_connections.remove(pos);
                let _ = self.save(info);
            }
        }
    }

    /// Ends a session; its record is deleted.
    pub fn end(&self, id: &str) -> SessionResult<()> {
        lock(&self.sessions).remove(id);
        match std::fs::remove_file(self.file(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SessionError::io(self.file(id), e)),
            _ => Ok(()),
        }
    }

    /// Sessions known in this process.
    #[must_use]
    pub fn active(&self) -> Vec<SessionInfo> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Ends every session (in memory and on disk) idle longer than the TTL; returns them.
    pub fn expire_idle(&self) -> Vec<SessionInfo> {
        let now = SystemTime::now();
        let ids: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".json").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut expired = Vec::new();
        for id in ids {
            let info = lock(&self.sessions).get(&id).cloned().or_else(|| self.load(&id).ok().flatten());
            if let Some(info) = info.filter(|i| self.expired(i, now)) {
                let _ = self.end(&id);
                expired.push(info);
            }
        }
        expired
    }
}

/// Session ids are UUIDs; anything else never names a file.
fn is_session_id(id: &str) -> bool {
    crate::store::is_uuid(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_file_with_an_impossible_time_is_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let tracker = SessionTracker::new(dir.path(), dir.path(), Duration::from_mins(1)).unwrap();
        let id = tracker.start().unwrap().session_id;
        let path = tracker.file(&id);
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let stamp = value["last_activity"].as_str().unwrap().to_owned();
        std::fs::write(&path, text.replace(&stamp, "999999999999-01-01T00:00:00Z")).unwrap();
        let restarted = SessionTracker::new(dir.path(), dir.path(), Duration::from_mins(1)).unwrap();
        let err = restarted.resume(&id).unwrap_err();
        assert_eq!(err.kind(), chromalite_core::ErrorKind::Corrupt, "{err}");
    }
}
