fn main() -> std::process::ExitCode {
    cogbox::cli::main()
}
