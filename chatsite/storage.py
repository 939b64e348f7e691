"""Static files storage: hashed, compressed names after collectstatic, plain names before it."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Heroku's build runs collectstatic without knowing it is on Heroku (DYNO is only set on dynos), so one
    storage serves both cases: with no manifest yet (a laptop, the tests) names stay as they are."""

    def stored_name(self, name):
        if not self.hashed_files:
            return name
        return super().stored_name(name)
