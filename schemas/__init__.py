"""lockstock's public Avro schemas: one named type per ``.avsc`` file, the file named after
the type, namespace ``io.lockstock``. These files are the contract for every topic; any Avro
library can decode lockstock's records from them alone (see docs/topics.md)."""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
NAMESPACE = "io.lockstock"
