"""Research: walk-forward folds, grid / optuna search, deflated Sharpe, and the research stage that
writes summary.json, strategies.yml.next and the curves."""
from engine.research.folds import Fold, choose_best, walk_forward_folds
from engine.research.pipeline import ResearchResult, default_workers, run_research, run_worker
from engine.research.search import SearchResult, contribute, search_entry_set
from engine.research.stats import deflated_sharpe
from engine.research.studies import StudyOptions, open_storage

__all__ = ["Fold", "ResearchResult", "SearchResult", "StudyOptions", "choose_best", "contribute",
           "default_workers", "deflated_sharpe", "open_storage", "run_research", "run_worker", "search_entry_set",
           "walk_forward_folds"]
