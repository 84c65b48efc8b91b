/*
 * authd-face-tool: stand-in for `authctl face-score` / `authctl face-check`
 * until they are wired into authctl's subcommand table.
 *   authd-face-tool face-score A B | --pairs FILE
 *   authd-face-tool face-check IMG...
 */
#include <stdio.h>
#include <string.h>

#include "cmd_face.h"

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "face-score") == 0)
		return cmd_face_score(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "face-check") == 0)
		return cmd_face_check(argc - 1, argv + 1);
	fprintf(stderr, "usage: authd-face-tool face-score|face-check ...\n");
	return 2;
}
