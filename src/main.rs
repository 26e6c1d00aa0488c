//! `edgetrace` binary: a thin wrapper over the library's CLI, with mimalloc
//! as its allocator.
//!
//! Why mimalloc: the analyzers allocate small objects on four threads
//! (reader, driver, two shards), and glibc's malloc took about 14 % of the
//! cycles of `report` on the 1 GiB bench (`perf`: `_int_malloc`,
//! `unlink_chunk`, `_int_free`, `malloc_consolidate`…).  With mimalloc the
//! same run needs 15–20 % less CPU (docs/performance.md, session 6).  Two
//! options keep its peak RSS near glibc's ([`tune_allocator`]).

// links mimalloc's library, whose functions are declared below
#[cfg(feature = "mimalloc")]
extern crate mimalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: Mi = Mi;

/// mimalloc, asked for its plain `mi_malloc` when a word's alignment is
/// enough (every mimalloc block is word-aligned), as std's system
/// allocator asks for `malloc`; `mimalloc::MiMalloc` always takes the
/// aligned path, whose checks were 1.2 % of a report's instructions.
#[cfg(feature = "mimalloc")]
struct Mi;

#[cfg(feature = "mimalloc")]
const WORD: usize = std::mem::size_of::<usize>();

#[cfg(feature = "mimalloc")]
unsafe impl std::alloc::GlobalAlloc for Mi {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        if l.align() <= WORD {
            mi_malloc(l.size()).cast()
        } else {
            mi_malloc_aligned(l.size(), l.align()).cast()
        }
    }

    unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
        if l.align() <= WORD {
            mi_zalloc(l.size()).cast()
        } else {
            mi_zalloc_aligned(l.size(), l.align()).cast()
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, _l: std::alloc::Layout) {
        mi_free(p.cast());
    }

    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, size: usize) -> *mut u8 {
        if l.align() <= WORD {
            mi_realloc(p.cast(), size).cast()
        } else {
            mi_realloc_aligned(p.cast(), size, l.align()).cast()
        }
    }
}

/// mimalloc's `mi_option_e` (include/mimalloc.h of mimalloc 3, whose
/// numbering keeps deprecated slots so that it stays stable).
#[cfg(feature = "mimalloc")]
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

#[cfg(feature = "mimalloc")]
extern "C" {
    fn mi_malloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_zalloc(size: usize) -> *mut std::ffi::c_void;
    fn mi_realloc(p: *mut std::ffi::c_void, size: usize) -> *mut std::ffi::c_void;
    fn mi_malloc_aligned(size: usize, align: usize) -> *mut std::ffi::c_void;
    fn mi_zalloc_aligned(size: usize, align: usize) -> *mut std::ffi::c_void;
    fn mi_realloc_aligned(
        p: *mut std::ffi::c_void,
        size: usize,
        align: usize,
    ) -> *mut std::ffi::c_void;
    fn mi_free(p: *mut std::ffi::c_void);
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn getenv(name: *const std::ffi::c_char) -> *mut std::ffi::c_char;
}

/// Commits arena memory as it is used rather than all at once, and gives
/// freed pages back 100 ms after they were freed (mimalloc never decommits
/// an eagerly committed arena).  Without them the peak RSS of `report` on
/// 1 GiB was 150–174 MiB instead of 104–109 MiB (glibc: 93 MiB), for no
/// measurable gain in time.  `MIMALLOC_ARENA_EAGER_COMMIT` and
/// `MIMALLOC_PURGE_DELAY` in the environment still win.
///
/// It must run before the first allocation, which creates the first arena
/// (Rust's runtime allocates before `main`): on Linux it is a constructor,
/// and it allocates nothing itself (`getenv`, not `std::env`).
#[cfg(feature = "mimalloc")]
extern "C" fn tune_allocator() {
    for (var, option, value) in [
        (
            c"MIMALLOC_ARENA_EAGER_COMMIT",
            MI_OPTION_ARENA_EAGER_COMMIT,
            0,
        ),
        (c"MIMALLOC_PURGE_DELAY", MI_OPTION_PURGE_DELAY, 100),
    ] {
        // SAFETY: getenv reads the environment, which nothing writes during
        // process start; mi_option_set only stores an option value.
        unsafe {
            if getenv(var.as_ptr()).is_null() {
                mi_option_set(option, value);
            }
        }
    }
}

#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[used]
#[link_section = ".init_array"]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

fn main() {
    #[cfg(all(feature = "mimalloc", not(target_os = "linux")))]
    tune_allocator();
    std::process::exit(edgetrace::cli::main());
}
