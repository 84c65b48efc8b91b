/*
 * authctl face-score / face-check: the face plugin's evaluation interface
 * (issue 5 item 7). They dlopen face.so from $AUTHD_PLUGIN_DIR, else the
 * build tree (AUTHD_BUILD_PLUGIN_DIR), and call it through its ABI struct
 * (the optional `compare` and `check` members). No daemon is involved.
 *
 * argv[0] is the subcommand name ("face-score"), options follow:
 *
 *   face-score [OPTS] A B           prints "<score> match|nomatch"
 *   face-score [OPTS] --pairs FILE  lines "A,B" -> "A,B,<score>,match|nomatch";
 *                                   an image without a usable face prints
 *                                   "error:<reason>" in place of the score
 *   face-check [OPTS] IMG...        detection/quality/liveness figures (JSON)
 *
 *   OPTS: --models-dir DIR, --threshold T, --liveness-threshold T
 *         (default: the [face] values from cmd_face_set_config, else the
 *         plugin's defaults)
 *
 * Exit status: 0 done (match or not), 1 no usable face / error, 2 usage.
 * Single-threaded (main thread of authctl).
 */
#ifndef AUTHD_CMD_FACE_H
#define AUTHD_CMD_FACE_H

int cmd_face_score(int argc, char **argv);
int cmd_face_check(int argc, char **argv);

/*
 * Lets authctl pass its loaded configuration ([face] keys) to the plugin.
 * get is called as get(section, key) and returns a lent string or NULL.
 */
void cmd_face_set_config(const char *(*get)(const char *section, const char *key));

#endif
