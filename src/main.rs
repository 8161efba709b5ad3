//! The `aerospike-swarm-operator` binary; the command line is in [`cli`].

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
