//! The instances a run drives, and which of them each client talks to.

/// The base URLs of the instances of one deployment that a run drives: the servers the bench
/// started, or those given with `--url`. Never empty.
#[derive(Debug, Clone)]
pub struct Instances {
    bases: Vec<String>,
}

impl Instances {
    /// The instances at `bases` (a trailing `/` is dropped).
    ///
    /// # Panics
    /// When `bases` is empty: a run drives at least one instance.
    pub fn new(bases: impl IntoIterator<Item = String>) -> Self {
        let bases: Vec<String> = bases
            .into_iter()
            .map(|base| base.trim_end_matches('/').to_owned())
            .collect();
        assert!(!bases.is_empty(), "a run drives at least one instance");
        Self { bases }
    }

    /// How many there are.
    pub fn count(&self) -> usize {
        self.bases.len()
    }

    /// The base URL of `instance`.
    pub fn base(&self, instance: usize) -> &str {
        &self.bases[instance]
    }

    /// The base URLs, in order.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// The instance client `client` reads from and writes to: clients are dealt round the
    /// instances, so each gets its share.
    pub fn home_of(&self, client: usize) -> usize {
        client % self.count()
    }

    /// The instance that checks a write made on `instance`: the next one, so that with two
    /// instances or more a write is never checked where it was made (what a cache local to one
    /// instance would hide).
    pub fn checker_of(&self, instance: usize) -> usize {
        (instance + 1) % self.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances(count: usize) -> Instances {
        Instances::new((0..count).map(|n| format!("http://127.0.0.1:{}/", 8000 + n)))
    }

    #[test]
    fn clients_are_dealt_round_the_instances() {
        let homes: Vec<usize> = (0..5).map(|client| instances(2).home_of(client)).collect();
        assert_eq!(homes, [0, 1, 0, 1, 0]);
    }

    #[test]
    fn a_write_is_checked_on_another_instance_when_there_is_one() {
        for count in 2..5 {
            let instances = instances(count);
            for instance in 0..count {
                assert_ne!(instances.checker_of(instance), instance);
            }
        }
        assert_eq!(instances(1).checker_of(0), 0);
    }

    #[test]
    fn base_urls_lose_their_trailing_slash() {
        assert_eq!(instances(1).base(0), "http://127.0.0.1:8000");
    }
}
