"""The legacy side: the Prisma-on-SQLite database True Label runs on today."""
