//! [`CounterRng`]: random-looking numbers from a counter, for a server.

use rand_core::{impls, Error, RngCore};

/// A counter mixed with a seed (SplitMix64): cheap, deterministic, and
/// **not** random. Enough where the numbers only have to differ from one
/// another, which is all a server needs: its frames are not masked, and a
/// heartbeat Ping's payload only has to tell the matching Pong from an
/// older one. Never use it for a client (masking keys and the handshake key
/// must be unpredictable: use a real RNG there).
#[derive(Clone, Debug, Default)]
pub struct CounterRng {
    state: u64,
}

impl CounterRng {
    /// A counter starting from `seed` (any value; two connections with
    /// different seeds give different sequences).
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_differ_by_seed_and_step() {
        let (mut a, mut b) = (CounterRng::new(1), CounterRng::new(2));
        let xs: [u32; 4] = core::array::from_fn(|_| a.next_u32());
        let ys: [u32; 4] = core::array::from_fn(|_| b.next_u32());
        assert_ne!(xs, ys);
        assert!(xs.windows(2).all(|w| w[0] != w[1]), "{xs:?}");
    }
}
