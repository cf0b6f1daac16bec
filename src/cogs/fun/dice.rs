//! Dice expressions `NdM[+K|-K]`, bounded so a roll can never be expensive or overflow.

use std::fmt;

pub const MAX_DICE: u32 = 100;
pub const MAX_SIDES: u32 = 1000;
pub const MAX_MODIFIER: i64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dice {
    pub count: u32,
    pub sides: u32,
    pub modifier: i64,
}

impl Dice {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("\"{text}\" is not a dice expression (try 2d6 or 1d20+5)");
        let lower = text.to_ascii_lowercase();
        let (count, rest) = lower.split_once('d').ok_or_else(bad)?;
        let (sides, modifier) = match rest.find(['+', '-']) {
            Some(at) => (&rest[..at], Some(&rest[at..])),
            None => (rest, None),
        };
        let number = |s: &str| -> Result<u64, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            Ok(s.parse::<u64>().unwrap_or(u64::MAX))
        };
        let count = if count.is_empty() { 1 } else { number(count)? };
        let sides = number(sides)?;
        if count == 0 || sides == 0 {
            return Err(bad());
        }
        if count > u64::from(MAX_DICE) {
            return Err(format!("at most {MAX_DICE} dice at once"));
        }
        if sides > u64::from(MAX_SIDES) {
            return Err(format!("at most {MAX_SIDES} sides per die"));
        }
        let modifier = match modifier {
            None => 0,
            Some(m) => {
                let size = number(&m[1..])?;
                if size > MAX_MODIFIER as u64 {
                    return Err(format!("the modifier must be at most {MAX_MODIFIER}"));
                }
                if m.starts_with('-') {
                    -(size as i64)
                } else {
                    size as i64
                }
            }
        };
        Ok(Self {
            count: count as u32,
            sides: sides as u32,
            modifier,
        })
    }

    /// Rolls with `die(sides)` giving each die's face, so tests can supply the faces.
    pub fn roll(self, mut die: impl FnMut(u32) -> u32) -> Roll {
        let faces = (0..self.count).map(|_| die(self.sides)).collect();
        Roll { dice: self, faces }
    }
}

impl fmt::Display for Dice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}d{}", self.count, self.sides)?;
        match self.modifier {
            0 => Ok(()),
            m if m > 0 => write!(f, "+{m}"),
            m => write!(f, "{m}"),
        }
    }
}

pub struct Roll {
    pub dice: Dice,
    pub faces: Vec<u32>,
}

impl Roll {
    pub fn total(&self) -> i64 {
        self.faces.iter().map(|&f| i64::from(f)).sum::<i64>() + self.dice.modifier
    }
}

impl fmt::Display for Roll {
    /// `2d6+1: [3, 5] + 1 = 9`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faces: Vec<String> = self.faces.iter().map(u32::to_string).collect();
        write!(f, "{}: [{}]", self.dice, faces.join(", "))?;
        match self.dice.modifier {
            0 => {}
            m if m > 0 => write!(f, " + {m}")?,
            m => write!(f, " - {}", -m)?,
        }
        write!(f, " = {}", self.total())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_sides_and_modifiers() {
        assert_eq!(
            Dice::parse("2d6"),
            Ok(Dice {
                count: 2,
                sides: 6,
                modifier: 0
            })
        );
        assert_eq!(
            Dice::parse("d20+5"),
            Ok(Dice {
                count: 1,
                sides: 20,
                modifier: 5
            })
        );
        assert_eq!(
            Dice::parse("3D8-2"),
            Ok(Dice {
                count: 3,
                sides: 8,
                modifier: -2
            })
        );
    }

    #[test]
    fn rejects_malformed_and_oversized() {
        for bad in [
            "d0", "0d6", "2x6", "d", "2d", "2d6+", "2d6+-1", "-2d6", "2d6.5", "",
        ] {
            assert!(
                Dice::parse(bad)
                    .unwrap_err()
                    .contains("is not a dice expression"),
                "{bad}"
            );
        }
        assert_eq!(
            Dice::parse("101d6").unwrap_err(),
            "at most 100 dice at once"
        );
        assert_eq!(
            Dice::parse("1d1001").unwrap_err(),
            "at most 1000 sides per die"
        );
        assert_eq!(
            Dice::parse("99999999999999999999999d6").unwrap_err(),
            "at most 100 dice at once"
        );
        assert!(
            Dice::parse("1d6+99999999999")
                .unwrap_err()
                .contains("modifier")
        );
    }

    #[test]
    fn totals_and_shows_each_face() {
        let mut faces = [3, 5, 6].into_iter();
        let roll = Dice::parse("3d6-2")
            .unwrap()
            .roll(|_| faces.next().unwrap());
        assert_eq!(roll.to_string(), "3d6-2: [3, 5, 6] - 2 = 12");
        let max = Dice::parse("100d1000+1000000").unwrap().roll(|sides| sides);
        assert_eq!(max.total(), 1_100_000);
    }
}
