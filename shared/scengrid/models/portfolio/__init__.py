"""The reference model: a multi-asset portfolio (bonds, equities, European options, fx cash)
revalued in full under factor shocks. See docs/model.md for the input contract."""

from scengrid.models.portfolio.contract import Portfolio, parse_portfolio
from scengrid.models.portfolio.model import PortfolioModel, load_portfolio
from scengrid.models.portfolio.sample import sample_portfolio

__all__ = ["Portfolio", "PortfolioModel", "load_portfolio", "parse_portfolio", "sample_portfolio"]
