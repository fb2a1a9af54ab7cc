"""openmm-nnp: machine-learned interatomic potentials in OpenMM.

Importing the package loads the compiled op library, so TorchScript models that call
``torch.ops.openmmnnp.*`` run anywhere, including inside openmm-torch's TorchForce.
"""

from openmmnnp._library import cuda_ops_available, load_library

load_library()

from openmmnnp.force import NNPForce  # noqa: E402
from openmmnnp.reporter import NNPCheckReporter  # noqa: E402
from openmmnnp.pretrained import pretrained_path  # noqa: E402
from openmmnnp.ops import neighbor_pairs  # noqa: E402

__version__ = "0.1.0"
__all__ = ["NNPCheckReporter", "NNPForce", "cuda_ops_available", "load_library", "neighbor_pairs", "pretrained_path"]
