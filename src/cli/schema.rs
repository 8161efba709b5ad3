//! `schema`: the JSON Schema of the AerospikeCluster YAML document.

use std::process::ExitCode;

use aerospike_swarm_operator::spec::schema;

pub fn run() -> ExitCode {
    print!("{}", schema::json_schema_text());
    ExitCode::SUCCESS
}
