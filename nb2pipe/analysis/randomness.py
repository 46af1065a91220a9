"""Which calls seed or draw from a global random generator: a table, read by the visitor (which
calls to look at) and the resolver (what a call does, once it knows what the names are bound to).

Two generators are carried from step to step, as the notebook has them: the `random` module's
and numpy's legacy global one (`np.random.rand`, and what libraries draw from it when given no
`random_state`). Others (torch, TensorFlow) keep their state where nb2pipe cannot reach it.
"""

from __future__ import annotations

from dataclasses import dataclass

CARRIED = ("random", "numpy")

# The `random` module's functions that draw from its hidden global `Random` instance.
_RANDOM_DRAWS = frozenset((
    "betavariate", "binomialvariate", "choice", "choices", "expovariate", "gammavariate",
    "gauss", "getrandbits", "lognormvariate", "normalvariate", "paretovariate", "randbytes",
    "randint", "random", "randrange", "sample", "shuffle", "triangular", "uniform",
    "vonmisesvariate", "weibullvariate",
))
# numpy.random's functions that draw from its legacy global RandomState.
_NUMPY_DRAWS = frozenset((
    "beta", "binomial", "bytes", "chisquare", "choice", "dirichlet", "exponential", "f",
    "gamma", "geometric", "gumbel", "hypergeometric", "laplace", "logistic", "lognormal",
    "logseries", "multinomial", "multivariate_normal", "negative_binomial",
    "noncentral_chisquare", "noncentral_f", "normal", "pareto", "permutation", "poisson",
    "power", "rand", "randint", "randn", "random", "random_integers", "random_sample",
    "ranf", "rayleigh", "sample", "shuffle", "standard_cauchy", "standard_exponential",
    "standard_gamma", "standard_normal", "standard_t", "triangular", "uniform", "vonmises",
    "wald", "weibull", "zipf",
))
_SEEDS = {"random.seed": "random", "random.setstate": "random",
          "numpy.random.seed": "numpy", "numpy.random.set_state": "numpy"}
# Library functions that seed `random` and numpy (and a hidden generator besides).
_SEED_ALL = {
    "lightning.seed_everything": "torch", "pytorch_lightning.seed_everything": "torch",
    "lightning.pytorch.seed_everything": "torch", "transformers.set_seed": "torch",
    "accelerate.utils.set_seed": "torch", "keras.utils.set_random_seed": "Keras",
    "tensorflow.keras.utils.set_random_seed": "TensorFlow",
}
# Seeds of generators nb2pipe cannot carry: (qualified prefix, what the user can do).
_HIDDEN = (
    ("torch.", "torch"),
    ("tensorflow.", "TensorFlow"),
    ("keras.", "Keras"),
    ("jax.", "JAX"),
    ("lightning.", "torch"),
    ("pytorch_lightning.", "torch"),
    ("transformers.", "torch"),
)
_HIDDEN_SEED_NAMES = frozenset(("manual_seed", "manual_seed_all", "set_seed",
                                "set_random_seed", "seed_everything"))
# Functions drawing from numpy's global generator unless given `random_state`.
_NUMPY_IMPLICIT_FUNCTIONS = frozenset((
    "train_test_split", "shuffle", "resample", "permutation_test_score", "learning_curve",
))
_NUMPY_IMPLICIT_MODULES = ("sklearn.",)
# Libraries whose functions and classes draw from numpy's global generator when given no
# generator or seed (scipy's `check_random_state(None)` is numpy's global RandomState;
# statsmodels' simulations call `np.random` directly): any call into them may draw.
_NUMPY_GLOBAL_LIBRARIES = ("scipy.", "statsmodels.")
# Keyword arguments that give such a call its own generator or seed.
_OWN_GENERATOR = frozenset(("random_state", "seed", "rng"))
# Estimators and splitters made without `random_state` draw from numpy's global generator
# when they are used (fit, split, transform).
DRAWING_CLASSES = frozenset((
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
    "ExtraTreesRegressor", "GradientBoostingClassifier", "GradientBoostingRegressor",
    "DecisionTreeClassifier", "DecisionTreeRegressor", "KMeans", "MiniBatchKMeans",
    "GaussianMixture", "BayesianGaussianMixture", "TSNE", "MLPClassifier", "MLPRegressor",
    "SGDClassifier", "SGDRegressor", "IsolationForest", "KFold", "StratifiedKFold",
    "ShuffleSplit", "StratifiedShuffleSplit", "RepeatedKFold", "RepeatedStratifiedKFold",
    "BaggingClassifier", "BaggingRegressor", "AdaBoostClassifier", "AdaBoostRegressor",
    "RandomizedSearchCV", "RandomTreesEmbedding", "SpectralClustering", "NMF",
    "TruncatedSVD", "LatentDirichletAllocation", "Perceptron", "PassiveAggressiveClassifier",
    "XGBClassifier", "XGBRegressor", "LGBMClassifier", "LGBMRegressor",
))
# Names worth an event: the last part of a callee (`np.random.rand` -> "rand").
_SEED_ALL_NAMES = frozenset(q.rpartition(".")[2] for q in _SEED_ALL)
CANDIDATES = frozenset((*_RANDOM_DRAWS, *_NUMPY_DRAWS, *_SEED_ALL_NAMES, *_HIDDEN_SEED_NAMES,
                        *_NUMPY_IMPLICIT_FUNCTIONS, "seed", "setstate", "set_state"))
SEED_NAMES = frozenset(("seed", "setstate", "set_state", *_SEED_ALL_NAMES))


@dataclass(frozen=True)
class Effect:
    generator: str  # "random" | "numpy"
    seeds: bool  # True: sets the state; False: draws from it


@dataclass(frozen=True)
class Classified:
    effects: tuple[Effect, ...] = ()
    hidden: str | None = None  # a generator nb2pipe cannot carry (it names the library)


def classify(qualified: str, keywords: tuple[str, ...]) -> Classified:
    """What calling `qualified` (a module path: "numpy.random.rand") does to global generators."""
    if qualified in _SEEDS:
        return Classified((Effect(_SEEDS[qualified], True),))
    if qualified in _SEED_ALL:
        return Classified((Effect("random", True), Effect("numpy", True)), _SEED_ALL[qualified])
    module, _, last = qualified.rpartition(".")
    hidden = next((library for prefix, library in _HIDDEN if qualified.startswith(prefix)), None)
    if hidden is not None and last in _HIDDEN_SEED_NAMES:
        return Classified(hidden=hidden)
    if module == "random" and last in _RANDOM_DRAWS:
        return Classified((Effect("random", False),))
    if module == "numpy.random" and last in _NUMPY_DRAWS:
        return Classified((Effect("numpy", False),))
    if (qualified.startswith(_NUMPY_IMPLICIT_MODULES) and last in _NUMPY_IMPLICIT_FUNCTIONS
            and "random_state" not in keywords):
        return Classified((Effect("numpy", False),))
    if qualified.startswith(_NUMPY_GLOBAL_LIBRARIES) and not _OWN_GENERATOR & set(keywords):
        return Classified((Effect("numpy", False),))
    return Classified()


def hidden_hint(library: str) -> str:
    return (f"{library} keeps its random state where the pipeline cannot carry it from step to "
            f"step: seed it again at the top of each step that draws from it (tag those "
            f"cells into one step), or pass a generator or seed explicitly")
