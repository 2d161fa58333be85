/** The file under dist/ that holds the digest of the sources it was built from. */
export declare const DIGEST_FILE: string;
/** A digest of src/**\/*.ts under `root`: their paths and contents. */
export declare function sourceDigest(root: string): string;
/** dist/'s `entry` (e.g. 'cli/main.js') under `root` when dist/ is built from the current sources, else null. */
export declare function freshDist(root: string, entry: string): string | null;
