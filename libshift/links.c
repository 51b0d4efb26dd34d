/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hard-link set of a shift run: every inode with more than one link is
 * shifted once, at its first name; the others are counted.  Inodes whose
 * links are not all inside the tree are reported at the end of the phase
 * (SHIFT_EVENT_EXTERNAL_LINK).  Open addressing on (dev, ino), under the
 * engine lock; memory grows with the number of multiply-linked inodes only.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "shift-engine.h"

/* The hard-link set: open addressing on (dev, ino), under e->lock. */
static uint64_t link_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull ^ dev;

	return h ^ (h >> 29);
}

static int link_grow(struct sk_engine *e)
{
	size_t nsize = e->links_size ? e->links_size * 2 : 1024, i;
	struct sk_link *nl = calloc(nsize, sizeof(*nl));

	if (!nl)
		return -ENOMEM;
	for (i = 0; i < e->links_size; i++) {
		struct sk_link *l = &e->links[i];
		size_t h;

		if (!l->nlink)
			continue;
		h = link_hash(l->dev, l->ino) & (nsize - 1);
		while (nl[h].nlink)
			h = (h + 1) & (nsize - 1);
		nl[h] = *l;
	}
	free(e->links);
	e->links = nl;
	e->links_size = nsize;
	return 0;
}

/* 1 when the inode was seen before in this phase, 0 when new. */
int sk_links_seen(struct sk_engine *e, const struct sk_stat *st,
		     const char *dir, const char *name)
{
	size_t h;
	int r = 0;

	pthread_mutex_lock(&e->lock);
	if ((e->links_n + 1) * 2 > e->links_size && link_grow(e) < 0) {
		r = -ENOMEM;
		goto out;
	}
	h = link_hash(st->dev, st->ino) & (e->links_size - 1);
	while (e->links[h].nlink) {
		if (e->links[h].dev == st->dev && e->links[h].ino == st->ino) {
			e->links[h].seen++;
			r = 1;
			goto out;
		}
		h = (h + 1) & (e->links_size - 1);
	}
	e->links[h] = (struct sk_link){
		.dev = st->dev,
		.ino = st->ino,
		.seen = 1,
		.nlink = st->nlink,
	};
	if (strcmp(dir, ".") == 0) {
		e->links[h].path = strdup(name);
	} else if (asprintf(&e->links[h].path, "%s/%s", dir, name) < 0) {
		e->links[h].path = NULL;
	}
	e->links_n++;
out:
	pthread_mutex_unlock(&e->lock);
	return r;
}

void sk_engine_links_report(struct sk_engine *e)
{
	size_t i;

	for (i = 0; i < e->links_size; i++) {
		struct sk_link *l = &e->links[i];

		if (l->nlink && l->seen < l->nlink && e->phase == SK_PHASE_SHIFT) {
			struct shift_event ev = {
				.type = SHIFT_EVENT_EXTERNAL_LINK,
				.id = l->nlink - l->seen,
			};

			sk_inode_event(e->ctx, &ev, l->path ? l->path : "?",
				       NULL);
		}
		free(l->path);
	}
	free(e->links);
	e->links = NULL;
	e->links_n = e->links_size = 0;
}
