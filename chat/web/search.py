"""The search page: the user's own conversations, 20 results a page."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from chat import search as searching


@login_required
def search(request):
    query = " ".join(request.GET.get("q", "").split())[: searching.MAX_QUERY_CHARS]
    page = Paginator(searching.search(request.user, query), searching.PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "chat/search.html", {"query": query, "page": page})
