"""Rank candidate models for a target without fine-tuning them: candidates -> arrays -> scores -> a Ranking.

One ranker, :func:`rank`, over one interface, :class:`Candidate`: a name, its
descriptive columns, the inputs it can give and the arrays themselves. Three
kinds of candidate come with the library:

- :class:`ZooCandidate` (:func:`zoo_candidates`): a member of a built-in zoo,
  which gives every input (features, source probabilities, gradients, source
  features, probe features);
- :class:`ModelCandidate` (:func:`model_candidates`): a model from ``hf:``,
  ``timm:``, ``torchvision:``, ``file:`` or any ``torch.nn.Module``, on your
  images (features, and source probabilities when it has a head);
- :class:`ArrayCandidate`: arrays computed elsewhere.

:func:`rank_zoo` and :func:`rank_models` are the two common calls, each a thin
wrapper that builds the candidates and calls :func:`rank`. :func:`select` finishes
the job: it ranks your models, fine-tunes the top k (each a job in the results
store) and keeps the best on validation, saved as a checkpoint.

Examples
--------
>>> import numpy as np
>>> from transferlab.rank import ArrayCandidate, rank
>>> y = np.repeat([0, 1], 10)
>>> separated = ArrayCandidate("separated", {"features": 3.0 * np.eye(2)[y] + np.cos(np.arange(20))[:, None]})
>>> mixed = ArrayCandidate("mixed", {"features": np.column_stack([np.sin(np.arange(20)), np.cos(np.arange(20))])})
>>> rank([mixed, separated], y, ["hscore"], progress=False).rows[0]["model"]
'separated'
"""

from transferlab.rank._candidate import ArrayCandidate, Candidate
from transferlab.rank._models import MODEL_INPUTS, ModelCandidate, model_candidates, rank_models
from transferlab.rank._decision import RULE
from transferlab.rank._ranking import DEFAULT_SCORES, Ranking, all_scores, default_scores, rank, split_score_names
from transferlab.rank._select import Selection, finetune, finetune_job, finetuned_metadata, select
from transferlab.rank._zoo import SOURCE_PER_CLASS, ZooCandidate, rank_zoo, zoo_candidates

__all__ = [
    "rank",
    "Ranking",
    "Candidate",
    "ArrayCandidate",
    "ZooCandidate",
    "zoo_candidates",
    "ModelCandidate",
    "model_candidates",
    "rank_zoo",
    "rank_models",
    "select",
    "Selection",
    "finetune_job",
    "finetune",
    "finetuned_metadata",
    "default_scores",
    "all_scores",
    "DEFAULT_SCORES",
    "RULE",
    "split_score_names",
    "MODEL_INPUTS",
    "SOURCE_PER_CLASS",
]
