"""Static files storage: hashed, compressed names after collectstatic, plain names before it."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    # Heroku's build runs collectstatic without knowing it is on Heroku (DYNO is only set on dynos), so
    # one storage serves both cases: without a manifest (a laptop, the tests) names stay unhashed.
    manifest_strict = False
