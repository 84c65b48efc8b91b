/*
 * The built pam_authd.so: dlopen(RTLD_NOW) resolves every symbol, the three
 * pam_sm_* entry points are there, and nothing else is exported (the
 * version script; a module loaded into sshd must not interpose symbols).
 * The dynamic symbol table is read straight from the ELF file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const entry_points[] = {"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt"};

static void
test_dlopen_finds_entry_points(void **state)
{
	void *h = dlopen(PAM_AUTHD_MODULE, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		fail_msg("dlopen %s: %s", PAM_AUTHD_MODULE, dlerror());
	for (size_t i = 0; i < sizeof entry_points / sizeof entry_points[0]; i++)
		assert_non_null(dlsym(h, entry_points[i]));
	/* Internals stay inside. */
	assert_null(dlsym(h, "pam_authd_args_parse"));
	assert_null(dlsym(h, "pam_authd_flow_auth"));
	assert_null(dlsym(h, "authd_client_connect"));
	dlclose(h);
}

static void
test_only_pam_sm_exported(void **state)
{
	int fd = open(PAM_AUTHD_MODULE, O_RDONLY | O_CLOEXEC);
	struct stat st;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	const uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(m != MAP_FAILED);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m;
	assert_memory_equal(eh->e_ident, ELFMAG, SELFMAG);
	assert_int_equal(eh->e_ident[EI_CLASS], ELFCLASS64);
	assert_true(eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) <= (uint64_t)st.st_size);
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(m + eh->e_shoff);
	size_t defined = 0, found = 0;
	for (size_t i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		assert_true(sh[i].sh_link < eh->e_shnum);
		const Elf64_Shdr *strs = &sh[sh[i].sh_link];
		const Elf64_Sym *sym = (const Elf64_Sym *)(m + sh[i].sh_offset);
		size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
		for (size_t k = 0; k < n; k++) {
			if (sym[k].st_shndx == SHN_UNDEF || sym[k].st_name == 0)
				continue;
			unsigned bind = ELF64_ST_BIND(sym[k].st_info);
			if (bind != STB_GLOBAL && bind != STB_WEAK)
				continue;
			const char *name = (const char *)(m + strs->sh_offset + sym[k].st_name);
			defined++;
			int ok = 0;
			for (size_t e = 0; e < sizeof entry_points / sizeof entry_points[0]; e++)
				ok |= strcmp(name, entry_points[e]) == 0;
			if (!ok)
				fail_msg("pam_authd.so exports '%s'", name);
			found++;
		}
	}
	assert_int_equal(found, 3);
	assert_int_equal(defined, 3);
	munmap((void *)(uintptr_t)m, (size_t)st.st_size);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dlopen_finds_entry_points),
	    cmocka_unit_test(test_only_pam_sm_exported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
