"""The "pages" blueprint itself, apart from the views, so that each group of views can add its routes."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pages", __name__)
