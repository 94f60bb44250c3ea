//! The open-file limit a load run needs: each user (or task in flight)
//! holds a connection, and a connection is a file. A soft limit of 1,024
//! (common under systemd) made connections fail inside the generator,
//! which reported them as the shop's "no answer". The soft limit is raised
//! to what the run needs, up to the hard limit; past that, the run is
//! refused, saying how to raise it.

/// Files a run holds beside its connections (the runtime, stdio, logs).
const SPARE: u64 = 64;

/// Raises this process's soft open-file limit to hold `wanted`
/// connections and some spare, as far as the hard limit allows; how many
/// connections it holds room for then (`wanted`, or fewer).
pub fn room_for(wanted: u64) -> Result<u64, String> {
    let needed = wanted.saturating_add(SPARE);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "cannot read the open-file limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur < needed {
        let raised = libc::rlimit {
            rlim_cur: needed.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit, its soft limit within the hard.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        }
    }
    Ok(limit.rlim_cur.saturating_sub(SPARE).min(wanted))
}

/// What to say when only `granted` of `wanted` connections fit.
pub fn too_few(wanted: u64, granted: u64) -> String {
    let needed = wanted.saturating_add(SPARE);
    format!(
        "this run holds about {needed} open files (a connection each), and this process may \
         have {} at most: raise the limit (`ulimit -n {needed}`, as root or in the service's \
         `LimitNOFILE`), or ask for fewer",
        granted.saturating_add(SPARE)
    )
}

#[cfg(test)]
mod tests {
    use super::{room_for, too_few};

    fn soft_limit() -> u64 {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in `make_room_for`.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        limit.rlim_cur
    }

    #[test]
    fn the_soft_limit_is_raised_to_what_the_run_holds_and_no_further_than_allowed() {
        // What this process holds already is room enough.
        assert_eq!(room_for(10).unwrap(), 10);
        assert!(soft_limit() >= 10 + super::SPARE);
        // More than any hard limit: as many as it allows, fewer than asked.
        let granted = room_for(u64::MAX / 2).unwrap();
        assert!((10..u64::MAX / 2).contains(&granted), "{granted}");
        assert!(soft_limit() >= granted);
        assert!(too_few(u64::MAX / 2, granted).contains("ulimit -n"));
    }
}
