"""The platform layer: settings, extensions, transactions and side effects, errors,
permissions, audit log, tokens, input parsing, background runner. Imports no feature package."""
