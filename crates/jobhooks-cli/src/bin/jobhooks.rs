//! The stock `jobhooks` binary: the command line with the seed example receivers linked in.

fn main() -> std::process::ExitCode {
    jobhooks_examples::link();
    jobhooks_cli::main()
}
