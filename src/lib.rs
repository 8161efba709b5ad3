//! aerospike-swarm-operator: runs Aerospike clusters on Docker Swarm.
