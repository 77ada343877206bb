//! Colour maps from a value in `[0, 1]` to RGB.

use std::f64::consts::PI;

/// A colour map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Matplotlib's `rainbow`, the map the seed's picture used:
    /// red `|2t - 1/2|`, green `sin(pi t)`, blue `cos(pi t / 2)`.
    Rainbow,
    /// Matplotlib's `hot`: black, red, yellow, white.
    Hot,
    /// Grey levels.
    Gray,
}

impl Colormap {
    /// Every map, for listings and tests.
    pub const ALL: [Colormap; 3] = [Colormap::Rainbow, Colormap::Hot, Colormap::Gray];

    /// The map's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Rainbow => "rainbow",
            Colormap::Hot => "hot",
            Colormap::Gray => "gray",
        }
    }

    /// The colour of `t` (clamped to `[0, 1]`).
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let t = t.clamp(0.0, 1.0);
        let (r, g, b) = match self {
            Colormap::Rainbow => ((2.0 * t - 0.5).abs(), (PI * t).sin(), (PI * t / 2.0).cos()),
            Colormap::Hot => (3.0 * t, 3.0 * t - 1.0, 3.0 * t - 2.0),
            Colormap::Gray => (t, t, t),
        };
        [byte(r), byte(g), byte(b)]
    }
}

fn byte(v: f64) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_of_the_maps() {
        assert_eq!(Colormap::Rainbow.rgb(0.0), [128, 0, 255]);
        assert_eq!(Colormap::Rainbow.rgb(1.0), [255, 0, 0]);
        assert_eq!(Colormap::Hot.rgb(0.0), [0, 0, 0]);
        assert_eq!(Colormap::Hot.rgb(1.0), [255, 255, 255]);
        assert_eq!(Colormap::Gray.rgb(0.5), [128, 128, 128]);
        assert_eq!(Colormap::Gray.rgb(f64::NAN.max(2.0)), [255, 255, 255]);
    }
}
