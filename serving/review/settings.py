"""Where the review store lives, from the environment (defaults under ANKANG_DATA_DIR or var/)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runtime.paths import PROJECT_ROOT


@dataclass(frozen=True)
class ReviewSettings:
    database_url: str
    photo_dir: Path
    keep_gps: bool = False

    @classmethod
    def from_env(cls) -> "ReviewSettings":
        data_dir = Path(os.environ.get("ANKANG_DATA_DIR", PROJECT_ROOT / "var"))
        review_dir = data_dir / "review"
        default_url = f"sqlite:///{review_dir / 'review.db'}"
        return cls(
            database_url=os.environ.get("ANKANG_DATABASE_URL", default_url),
            photo_dir=Path(os.environ.get("ANKANG_PHOTO_STORE", review_dir / "photos")),
            keep_gps=os.environ.get("ANKANG_KEEP_GPS", "0") == "1",
        )
