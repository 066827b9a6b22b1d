//! How the process takes memory from the kernel.
//!
//! mimalloc, the global allocator (`main.rs`), asks for transparent huge pages on the regions it
//! maps. The first touch of each 2 MiB region then makes the kernel find and zero a whole huge
//! page while the touching thread waits. A service that has just started touches most of its
//! memory for the first time in its first burst of work: the first 10,000 windows opening in
//! one second after a start spent about 20 ms of the writer's and the runtime's time in those
//! faults, and waited 48–61 ms for its last lease against 23–46 ms for the bursts after it
//! (BENCHMARKS.md). With huge pages off, the first burst is like the others, and requests per
//! second did not move. Redis and MongoDB advise turning them off for the same reason.

/// Turns transparent huge pages off for the whole process, for memory already mapped as well
/// as memory mapped later (the kernel checks at each fault). Returns whether they are off;
/// `false` where the kernel has no such switch, which costs latency, not correctness.
pub fn turn_off_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}
