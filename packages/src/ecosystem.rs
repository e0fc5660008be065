//! The package ecosystems we know the version rules of, and how purl types
//! and OSV ecosystem names map onto them.

use std::fmt;

/// A package ecosystem: whose naming and version-ordering rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    Npm,
    Cargo,
    PyPI,
    Maven,
    Go,
    RubyGems,
    NuGet,
    Composer,
    /// GitHub repositories and Actions: versions are tags or commits with no
    /// ordering we can rely on, so only exact versions can match.
    GitHub,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 9] = [
        Ecosystem::Npm,
        Ecosystem::Cargo,
        Ecosystem::PyPI,
        Ecosystem::Maven,
        Ecosystem::Go,
        Ecosystem::RubyGems,
        Ecosystem::NuGet,
        Ecosystem::Composer,
        Ecosystem::GitHub,
    ];

    /// The ecosystem of a purl type (lowercase, as in a canonical purl).
    pub fn from_purl_type(ty: &str) -> Option<Ecosystem> {
        Some(match ty {
            "npm" => Ecosystem::Npm,
            "cargo" => Ecosystem::Cargo,
            "pypi" => Ecosystem::PyPI,
            "maven" => Ecosystem::Maven,
            "golang" => Ecosystem::Go,
            "gem" => Ecosystem::RubyGems,
            "nuget" => Ecosystem::NuGet,
            "composer" => Ecosystem::Composer,
            "github" => Ecosystem::GitHub,
            _ => return None,
        })
    }

    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "cargo",
            Ecosystem::PyPI => "pypi",
            Ecosystem::Maven => "maven",
            Ecosystem::Go => "golang",
            Ecosystem::RubyGems => "gem",
            Ecosystem::NuGet => "nuget",
            Ecosystem::Composer => "composer",
            Ecosystem::GitHub => "github",
        }
    }

    /// The ecosystem of an OSV `affected[].package.ecosystem`. Maven and
    /// Packagist may name their repository after a `:`
    /// (`Maven:https://maven.google.com`), which changes nothing about
    /// versions; other suffixes (`Debian:12`) are not ours and are refused.
    pub fn from_osv(name: &str) -> Option<Ecosystem> {
        let name = match name.split_once(':') {
            Some((base @ ("Maven" | "Packagist"), _)) => base,
            Some(_) => return None,
            None => name,
        };
        Some(match name {
            "npm" => Ecosystem::Npm,
            "crates.io" => Ecosystem::Cargo,
            "PyPI" => Ecosystem::PyPI,
            "Maven" => Ecosystem::Maven,
            "Go" => Ecosystem::Go,
            "RubyGems" => Ecosystem::RubyGems,
            "NuGet" => Ecosystem::NuGet,
            "Packagist" => Ecosystem::Composer,
            "GitHub Actions" => Ecosystem::GitHub,
            _ => return None,
        })
    }

    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "crates.io",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Maven => "Maven",
            Ecosystem::Go => "Go",
            Ecosystem::RubyGems => "RubyGems",
            Ecosystem::NuGet => "NuGet",
            Ecosystem::Composer => "Packagist",
            Ecosystem::GitHub => "GitHub Actions",
        }
    }

    /// Whether versions of this ecosystem can be ordered (and so ranges
    /// evaluated); without it only exact versions match.
    pub fn has_ordering(self) -> bool {
        self != Ecosystem::GitHub
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_types_and_osv_names_round_trip() {
        for eco in Ecosystem::ALL {
            assert_eq!(Ecosystem::from_purl_type(eco.purl_type()), Some(eco));
            assert_eq!(Ecosystem::from_osv(eco.osv_name()), Some(eco));
        }
        assert_eq!(Ecosystem::from_osv("pypi"), None, "OSV names are exact");
        assert_eq!(Ecosystem::from_osv("Debian:12"), None);
        assert_eq!(
            Ecosystem::from_osv("Maven:https://maven.google.com"),
            Some(Ecosystem::Maven)
        );
        assert_eq!(Ecosystem::from_osv("npm:x"), None);
        assert_eq!(Ecosystem::from_purl_type("deb"), None);
    }
}
