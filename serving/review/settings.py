"""Where the review store lives: the review fields of `ServingSettings` (defaults under ANKANG_DATA_DIR)."""

from __future__ import annotations

from dataclasses import dataclass

from serving.settings import ServingSettings


@dataclass(frozen=True)
class ReviewSettings:
    database_url: str
    photo_dir: str  # a folder or an fsspec URL such as s3://bucket/prefix
    keep_gps: bool = False

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> ReviewSettings:
        return cls(
            database_url=settings.resolved_database_url,
            photo_dir=settings.resolved_photo_store,
            keep_gps=settings.keep_gps,
        )

    @classmethod
    def from_env(cls) -> ReviewSettings:
        """For the command line (`ankang export reviews`): the environment, read by `ServingSettings`."""
        return cls.from_settings(ServingSettings.from_env())
