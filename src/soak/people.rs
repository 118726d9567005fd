//! The soak's people: sandbox persons `p0`, `p1`, … and what the soak knows of each (where
//! they logged in, their tokens, whether they follow the OA), and the one thing the answers
//! must agree on as they come: a unionid always comes back with the same user.

use std::collections::HashMap;
use std::sync::Mutex;

/// What the soak knows of one person.
#[derive(Clone, Debug, Default)]
pub(crate) struct Person {
    pub mp_a: bool,
    pub mp_b: bool,
    /// Logged into the OA with `snsapi_base` only (WeChat sent no unionid): a merge waits for
    /// the unionid to show (an `snsapi_userinfo` login, the follower sync).
    pub oa_base: bool,
    pub oa_userinfo: bool,
    /// Follows the OA (the soak pushed the `subscribe`).
    pub follows: bool,
    pub unionid: Option<String>,
    /// The user the last login answered with.
    pub user_id: Option<String>,
    pub access: Option<String>,
    pub refresh: Option<String>,
    /// Kept for the follower sync to merge (no operation picks them).
    pub reserved: bool,
}

/// Everyone, and the unionid → user answers seen.
#[derive(Default)]
pub(crate) struct People {
    list: Mutex<Vec<Person>>,
    by_unionid: Mutex<HashMap<String, String>>,
    /// Answers that named another user for a unionid than an earlier answer did.
    pub mismatches: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sandbox name of person `i`.
pub(crate) fn name(i: usize) -> String {
    format!("p{i}")
}

impl People {
    /// A new person; their index.
    pub fn add(&self) -> usize {
        let mut list = lock(&self.list);
        list.push(Person::default());
        list.len() - 1
    }

    /// A new person no operation picks; their index.
    pub fn add_reserved(&self) -> usize {
        let mut list = lock(&self.list);
        list.push(Person {
            reserved: true,
            ..Person::default()
        });
        list.len() - 1
    }

    pub fn len(&self) -> usize {
        lock(&self.list).len()
    }

    pub fn get(&self, i: usize) -> Person {
        lock(&self.list)[i].clone()
    }

    pub fn update(&self, i: usize, f: impl FnOnce(&mut Person)) {
        f(&mut lock(&self.list)[i]);
    }

    /// A random person for whom `pred` holds (None if none is found quickly).
    pub fn pick(&self, rng: &mut Rng, pred: impl Fn(&Person) -> bool) -> Option<usize> {
        let list = lock(&self.list);
        if list.is_empty() {
            return None;
        }
        let pred = |p: &Person| !p.reserved && pred(p);
        for _ in 0..32 {
            let i = rng.below(list.len());
            if pred(&list[i]) {
                return Some(i);
            }
        }
        // Rare kinds: walk from a random place.
        let start = rng.below(list.len());
        (0..list.len())
            .map(|k| (start + k) % list.len())
            .find(|&i| pred(&list[i]))
    }

    /// Takes person `i`'s refresh token (so no two refreshes present the same one).
    pub fn take_refresh(&self, i: usize) -> Option<String> {
        lock(&self.list)[i].refresh.take()
    }

    /// A login (or `me`, or a refresh) answered that person `i` is `user_id` with `unionid`:
    /// keeps their tokens, and checks the unionid against the user earlier answers named.
    pub fn answered(
        &self,
        i: usize,
        user: &serde_json::Value,
        access: Option<&str>,
        refresh: Option<&str>,
    ) {
        let user_id = user["id"].as_str().map(str::to_owned);
        let unionid = user["unionid"].as_str().map(str::to_owned);
        if let (Some(u), Some(id)) = (&unionid, &user_id) {
            let mut seen = lock(&self.by_unionid);
            match seen.get(u) {
                Some(first) if first != id => lock(&self.mismatches).push(format!(
                    "{}: unionid {u} answered as user {id}, earlier as {first}",
                    name(i)
                )),
                Some(_) => {}
                None => {
                    seen.insert(u.clone(), id.clone());
                }
            }
        }
        self.update(i, |p| {
            if user_id.is_some() {
                p.user_id = user_id;
            }
            if unionid.is_some() {
                p.unionid = unionid;
            }
            if let Some(a) = access {
                p.access = Some(a.to_owned());
            }
            if let Some(r) = refresh {
                p.refresh = Some(r.to_owned());
            }
        });
    }

    /// Unionids the answers named.
    pub fn unionids_seen(&self) -> usize {
        lock(&self.by_unionid).len()
    }
}

/// A small PRNG (xorshift64*): the soak's choices need no more.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new() -> Self {
        let seed = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        );
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
