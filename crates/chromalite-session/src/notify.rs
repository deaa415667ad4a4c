//! Delivery of [`StateChange`]s to subscribers: channels and callbacks.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::lock;
use crate::model::StateChange;

type Callback = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// Fan-out of state changes. Dropped receivers are forgotten on the next send.
#[derive(Default)]
pub struct Notifier {
    senders: Mutex<Vec<Sender<StateChange>>>,
    callbacks: Mutex<Vec<Callback>>,
    history: Mutex<Vec<StateChange>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("subscribers", &lock(&self.senders).len()).finish_non_exhaustive()
    }
}

impl Notifier {
    /// A channel receiving every later change.
    pub fn subscribe(&self) -> Receiver<StateChange> {
        let (tx, rx) = channel();
        lock(&self.senders).push(tx);
        rx
    }

    /// Calls `f` on every later change (from the thread that caused it; keep it short).
    pub fn on_change(&self, f: impl Fn(&StateChange) + Send + Sync + 'static) {
        lock(&self.callbacks).push(Arc::new(f));
    }

    /// Every change so far, oldest first.
    pub fn history(&self) -> Vec<StateChange> {
        lock(&self.history).clone()
    }

    pub(crate) fn send(&self, change: &StateChange) {
        lock(&self.history).push(change.clone());
        lock(&self.senders).retain(|tx| tx.send(change.clone()).is_ok());
        // Call outside the lock so a callback may subscribe or query state.
        let callbacks: Vec<Callback> = lock(&self.callbacks).clone();
        for cb in callbacks {
            cb(change);
        }
    }
}
