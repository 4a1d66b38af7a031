//! Fan-out of server messages to the sockets of a session, for what happens outside the socket's
//! own request loop (completion over REST, the score arriving from the worker).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::messages::ServerMessage;

#[derive(Clone, Default)]
pub struct Hub {
    sessions: Arc<Mutex<HashMap<String, broadcast::Sender<ServerMessage>>>>,
}

impl Hub {
    pub fn subscribe(&self, session_id: &str) -> broadcast::Receiver<ServerMessage> {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(session_id.to_string())
            .or_insert_with(|| broadcast::channel(32).0)
            .subscribe()
    }

    /// Whether a socket of the session is open on this instance.
    pub fn has(&self, session_id: &str) -> bool {
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.get(session_id)
            .is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Delivers to every open socket of the session; none open is fine.
    pub fn send(&self, session_id: &str, message: ServerMessage) {
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(session_id) {
            let _ = tx.send(message);
        }
    }
}
