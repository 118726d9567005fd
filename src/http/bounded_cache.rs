//! A map bounded by the bytes of what it holds, the oldest entry forgotten first: the
//! persisted queries' texts (`persisted.rs`) and the parsed documents (`documents.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Values by key, at most `max_bytes` of them by the weight each was put in with.
pub struct BoundedCache<V> {
    max_bytes: usize,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    by_key: HashMap<Arc<str>, (Arc<V>, usize)>,
    order: VecDeque<Arc<str>>,
    bytes: usize,
}

impl<V> BoundedCache<V> {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Inner {
                by_key: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    /// The value kept under `key`.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let inner = self.inner.lock().unwrap();
        inner.by_key.get(key).map(|(value, _)| value.clone())
    }

    /// Keeps `value` under `key` (weighing `bytes`), forgetting the oldest entries to make room;
    /// a value heavier than the whole cache, or a key already kept, changes nothing.
    pub fn put(&self, key: &str, value: V, bytes: usize) {
        if bytes > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        if inner.by_key.contains_key(key) {
            return;
        }
        while inner.bytes + bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, gone)) = inner.by_key.remove(&oldest) {
                inner.bytes -= gone;
            }
        }
        let key: Arc<str> = Arc::from(key);
        inner.bytes += bytes;
        inner.order.push_back(key.clone());
        inner.by_key.insert(key, (Arc::new(value), bytes));
    }

    /// The weight of what is kept.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedCache;

    #[test]
    fn the_oldest_entries_go_first_and_the_weight_stays_within_the_bound() {
        let cache = BoundedCache::new(10);
        cache.put("a", 1, 4);
        cache.put("b", 2, 4);
        cache.put("c", 3, 4);
        assert!(cache.get("a").is_none(), "the oldest went to make room");
        assert_eq!(cache.get("b").as_deref(), Some(&2));
        assert_eq!(cache.get("c").as_deref(), Some(&3));
        assert_eq!(cache.bytes(), 8);
        cache.put("huge", 4, 11);
        assert!(
            cache.get("huge").is_none(),
            "heavier than the cache: not kept"
        );
        assert_eq!(cache.bytes(), 8);
    }
}
