//! Delay distributions and the inverse normal CDF used to draw cascade arrivals in time order.

/// A log-normal delay, written as its median and the standard deviation of its logarithm.
/// Log-normal because response times on social networks (reshares, replies, moderator
/// actions) are multiplicative: most come within a typical time scale, a long tail far later.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delay {
    pub median_secs: f64,
    pub sigma: f64,
    /// The longest delay drawn. It bounds how far ahead the simulator schedules, and so how
    /// much it keeps in memory.
    pub cap_secs: f64,
}

impl Delay {
    pub const fn new(median_secs: f64, sigma: f64, cap_secs: f64) -> Delay {
        Delay {
            median_secs,
            sigma,
            cap_secs,
        }
    }

    /// The delay in milliseconds for a standard normal draw `z`; at least one millisecond, so
    /// a consequence is always strictly after its cause.
    pub fn millis(self, z: f64) -> i64 {
        (self.median_secs * 1000.0 * (self.sigma * z).exp()).clamp(1.0, self.cap_secs * 1000.0) as i64
    }
}

pub(crate) const MINUTE: f64 = 60.0;
pub(crate) const HOUR: f64 = 3600.0;
pub(crate) const DAY: f64 = 86_400.0;

/// The quantile function of the standard normal distribution (Acklam's rational approximation,
/// relative error below 1.2e-9). It turns a sorted sequence of uniforms into a sorted sequence
/// of log-normal delays, which lets a cascade of any size be drawn one arrival at a time.
pub(crate) fn inv_norm_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_known_values() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_985),
            (0.025, -1.959_963_985),
            (0.001, -3.090_232_306),
            (0.84134474607, 1.0),
        ] {
            assert!((inv_norm_cdf(p) - z).abs() < 1e-6, "{p}: {}", inv_norm_cdf(p));
        }
        assert_eq!(inv_norm_cdf(1.0), f64::INFINITY);
    }

    #[test]
    fn delays_are_capped_and_positive() {
        let d = Delay::new(60.0, 2.0, HOUR);
        assert_eq!(d.millis(0.0), 60_000);
        assert_eq!(d.millis(10.0), 3_600_000);
        assert_eq!(d.millis(-40.0), 1);
    }
}
