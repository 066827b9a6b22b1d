//! How the process takes memory from the kernel: without transparent huge pages.

/// mimalloc, the global allocator (`main.rs`), asks for transparent huge pages on the regions
/// it maps, so the first touch of each 2 MiB region makes the kernel find and zero a whole
/// huge page while the touching thread waits. A service that has just started touches most of
/// its memory for the first time in its first burst of work, which made the first burst after
/// a start the slowest of every run; with huge pages off it is like the others, requests per
/// second do not move, and resident memory is smaller (BENCHMARKS.md: huge pages off). Redis
/// and MongoDB advise the same.
///
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
