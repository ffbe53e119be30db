//! The `roster` command.

fn main() -> std::process::ExitCode {
    roster_host::cli::main()
}
