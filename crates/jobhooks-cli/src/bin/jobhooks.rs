//! The stock `jobhooks` binary: the command line with the seed example receivers linked in.

// Draining and committing allocate and free many small buffers across threads (sled's IO threads
// free what tokio's threads allocated); glibc's malloc spent about a fifth of the CPU time there,
// and mimalloc makes end-to-end runs about a quarter faster (docs/benchmarks.md, "Allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(feature = "demo")]
    jobhooks_examples::link();
    jobhooks_cli::main()
}
