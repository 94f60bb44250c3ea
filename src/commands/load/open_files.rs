//! The open-file limit a load run needs: each user (or task in flight)
//! holds a connection, and a connection is a file. A soft limit of 1,024
//! (common under systemd) made connections fail inside the generator,
//! which reported them as the shop's "no answer". The soft limit is raised
//! to what the run needs, up to the hard limit; past that, the run is
//! refused, saying how to raise it.

/// Files a run holds beside its connections (the runtime, stdio, logs).
const SPARE: u64 = 64;

/// Raises this process's soft open-file limit to hold `connections`
/// connections and some spare, if it is lower; an error saying what to
/// do if the hard limit is lower still.
pub fn make_room_for(connections: u64) -> Result<(), String> {
    let needed = connections.saturating_add(SPARE);
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
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        return Err(format!(
            "this run holds about {needed} open files (a connection each), and this process \
             may have {} at most: raise the limit (`ulimit -n {needed}`, as root or in the \
             service's `LimitNOFILE`), or ask for fewer users",
            limit.rlim_max
        ));
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit, its soft limit within the hard.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!(
            "cannot raise the open-file limit to {needed}: {}; raise it (`ulimit -n {needed}`), \
             or ask for fewer users",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::make_room_for;

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
        make_room_for(10).unwrap();
        assert!(soft_limit() >= 10 + super::SPARE);
        // More than any hard limit: refused, saying how to raise it.
        let refused = make_room_for(u64::MAX / 2).unwrap_err();
        assert!(refused.contains("ulimit -n"), "{refused}");
    }
}
