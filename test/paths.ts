/** The repository root, for tests and tools that read its files (compiled to dist/test/paths.js). */
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
