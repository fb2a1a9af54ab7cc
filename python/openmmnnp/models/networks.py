"""The small dense networks of DeePMD models: tanh layers with residual connections."""

from typing import Any, Dict, List

import torch

class ResidualTanhNet(torch.nn.Module):
    """x [B, sizes[0]] -> [B, sizes[-1]]; hidden layers y = tanh(W x + b) (+ x, or + [x, x]).

    A layer adds its input when its width equals the input's and the input twice over when
    it is double (DeePMD's embedding-net resnet). ``linear_output`` makes the last layer
    affine (fitting nets end in an energy).

    ``timestep`` (DeePMD's ``resnet_dt``, None by default): [num_layers, max width]; row k
    scales the tanh of hidden layer k before the residual is added: y = x + dt_k * tanh(...).
    """

    def __init__(self, sizes: List[int], linear_output: bool = False) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.linear_output = linear_output
        for layer in self.layers:
            torch.nn.init.normal_(layer.weight, std=1.0 / (layer.in_features + layer.out_features) ** 0.5)
            torch.nn.init.normal_(layer.bias, std=1.0)
        self.register_buffer("timestep", None)

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str, *args: Any) -> None:
        # A saved net with a timestep loads into a fresh (timestep-less) one, e.g. in compress.
        saved = state_dict.get(prefix + "timestep")
        if saved is not None and self.timestep is None:
            self.timestep = torch.empty_like(saved)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        timestep = self.timestep
        for k, layer in enumerate(self.layers):
            if k == last and self.linear_output:
                x = layer(x)
            else:
                y = torch.tanh(layer(x))
                if timestep is not None:
                    y = y * timestep[k, : layer.out_features]
                if layer.out_features == layer.in_features:
                    x = x + y
                elif layer.out_features == 2 * layer.in_features:
                    x = torch.cat([x, x], dim=-1) + y
                else:
                    x = y
        return x
