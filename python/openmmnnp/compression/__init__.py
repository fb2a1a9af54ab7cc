"""Model compression (DeePMD-kit's ``dp compress``): polynomial tables of the embedding nets."""

from openmmnnp.compression.compress import compress
from openmmnnp.compression.se_e2_a_compressed import SeE2ACompressed
from openmmnnp.compression.tables import build_table, build_tables, evaluate_table, locate, table_bounds

__all__ = ["SeE2ACompressed", "compress", "build_table", "build_tables", "evaluate_table", "locate", "table_bounds"]
