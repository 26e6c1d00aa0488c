//! Handing freed heap memory back to the operating system.
//!
//! The pass ends holding its largest state (flow records, per-flow finder
//! state, kept messages); the merges then free most of it, and the report's
//! models allocate anew.  glibc keeps freed chunks in the arena of the
//! thread that allocated them, and the pass allocated on the reader, the
//! driver and every shard thread, so the models' allocations mostly take
//! fresh pages while the freed ones stay resident: the peak RSS of a report
//! was reached at the end, tens of MB above the heap in use.
//! `malloc_trim(0)` (glibc 2.8+) returns the free pages of every arena, so the
//! peak is the pass's own.

/// Returns the pages of freed heap memory to the OS (glibc's `malloc_trim`),
/// once, where a run has just freed much of its state.  Costs a walk over the
/// free lists: 1 ms on the 200 MB bench, 9 ms on 1 GiB, 30 ms on 2 GiB (under
/// 1 % of the run); nothing on other platforms or allocators.  The
/// `edgetrace` binary allocates with mimalloc (src/main.rs), which gives
/// freed pages back on its own (100 ms after they are freed), so there it
/// only trims what glibc holds for C code; it matters for a build with
/// `--no-default-features` and for the library used elsewhere.
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only releases memory the allocator holds free;
        // it takes the allocator's own locks and touches no live allocation.
        unsafe {
            malloc_trim(0);
        }
    }
}
