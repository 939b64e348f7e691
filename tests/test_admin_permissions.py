"""Who may do what in the review console, and how the first admin comes to exist.

Personas: charlie (no staff flag) and anonymous visitors get nothing; bob (staff, no group) gets into the admin
but sees no conversations; rita (the reviewer group) reads everything and changes nothing but her review marks;
sam (superuser) also manages users and reads the audit log.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from chat.models import Feedback, ReviewMark, TranscriptView
from tests import admin_helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(alice):
    conv = h.conversation(alice, "Private matters")
    _, reply = h.exchange(conv, "secret question", "secret answer", status="error", error="boom")
    h.feedback(reply, alice, Feedback.Rating.DOWN)
    return conv


def read_urls(conv):
    reply = conv.messages.get(role="assistant")
    return [
        reverse("admin:chat_conversation_changelist"),
        reverse("admin:chat_conversation_change", args=[conv.pk]),
        reverse("admin:chat_conversation_export", args=[conv.pk, "json"]),
        reverse("admin:chat_conversation_export", args=[conv.pk, "md"]),
        reverse("admin:chat_conversation_dashboard"),
        reverse("admin:chat_conversation_dashboard_csv"),
        reverse("admin:chat_conversation_inbox"),
        reverse("admin:chat_message_changelist"),
        reverse("admin:chat_message_change", args=[reply.pk]),
        reverse("admin:chat_feedback_changelist"),
    ]


def review_url(conv):
    return reverse("admin:chat_conversation_review", args=[conv.messages.get(role="assistant").public_id])


@pytest.mark.parametrize("persona", ["anonymous", "charlie", "alice"])
def test_non_staff_get_the_login_page_and_nothing_else(client, request, chat, persona):
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    for url in [*read_urls(chat), "/admin/", "/admin/auth/user/", "/admin/chat/transcriptview/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
        assert b"secret" not in response.content
    response = client.post(review_url(chat), {"note": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not ReviewMark.objects.exists() and not TranscriptView.objects.exists()


def test_plain_staff_get_into_the_admin_but_see_no_conversations(client, bob, chat):
    client.force_login(bob)
    assert client.get("/admin/").status_code == 200
    for url in read_urls(chat):
        assert client.get(url).status_code == 403, url
    assert client.post(review_url(chat), {"note": "x"}).status_code == 403
    assert "Review inbox" not in client.get("/admin/").content.decode()
    assert not TranscriptView.objects.exists()


def test_reviewer_reads_everything(rita_client, chat):
    for url in read_urls(chat):
        response = rita_client.get(url, follow=True)
        assert response.status_code == 200, url
    html = rita_client.get(reverse("admin:chat_conversation_change", args=[chat.pk])).content.decode()
    assert "secret answer" in html


def test_reviewer_changes_nothing(rita_client, chat):
    change = reverse("admin:chat_conversation_change", args=[chat.pk])
    assert rita_client.get(reverse("admin:chat_conversation_add")).status_code == 403
    assert rita_client.post(change, {"title": "edited"}).status_code == 405
    assert rita_client.get(reverse("admin:chat_conversation_delete", args=[chat.pk])).status_code == 403
    message = chat.messages.first()
    assert rita_client.post(reverse("admin:chat_message_change", args=[message.pk]), {}).status_code == 403
    assert rita_client.get(reverse("admin:chat_message_add")).status_code == 403
    # The list offers exports, not deletion.
    actions = rita_client.get(reverse("admin:chat_conversation_changelist")).context["action_form"]
    assert [name for name, _ in actions.fields["action"].choices if name] == ["export_json", "export_markdown"]
    response = rita_client.post(
        reverse("admin:chat_conversation_changelist"), {"action": "delete_selected", "_selected_action": [chat.pk]}
    )
    assert response.status_code in (200, 302)
    chat.refresh_from_db()
    assert chat.title == "Private matters" and chat.messages.count() == 2


def test_reviewer_marks_reviewed(rita_client, rita, chat):
    assert rita_client.post(review_url(chat), {"note": "checked"}).status_code == 302
    assert ReviewMark.objects.get().reviewer == rita


def test_reviewer_cannot_manage_users_or_read_the_audit_log(rita_client):
    for url in ["/admin/auth/user/", "/admin/auth/group/", "/admin/auth/user/add/", "/admin/chat/transcriptview/"]:
        assert rita_client.get(url).status_code == 403, url


def test_staff_with_user_permissions_still_cannot_manage_users(client, bob):
    bob.user_permissions.set(Permission.objects.filter(content_type__app_label="auth"))
    client.force_login(bob)
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get(reverse("admin:auth_user_change", args=[bob.pk])).status_code == 403


def test_superuser_manages_users_and_reads_the_audit_log(client, sam, rita_client, rita, chat):
    rita_client.get(reverse("admin:chat_conversation_change", args=[chat.pk]))
    client.force_login(sam)
    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get(reverse("admin:auth_user_change", args=[rita.pk])).status_code == 200
    log = client.get("/admin/chat/transcriptview/")
    assert log.status_code == 200
    html = log.content.decode()
    assert "rita" in html and str(chat.public_id) in html
    # Append-only, even for superusers; and no transcript text in the log.
    entry = TranscriptView.objects.get()
    assert client.get(reverse("admin:chat_transcriptview_delete", args=[entry.pk])).status_code == 403
    assert client.post(reverse("admin:chat_transcriptview_change", args=[entry.pk]), {}).status_code == 403
    assert "secret" not in html


def test_superuser_may_delete_a_conversation(client, sam, chat):
    client.force_login(sam)
    response = client.post(reverse("admin:chat_conversation_delete", args=[chat.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not type(chat).objects.filter(pk=chat.pk).exists()


def test_audit_log_outlives_the_conversation_and_the_viewer(rita_client, rita, chat):
    rita_client.get(reverse("admin:chat_conversation_change", args=[chat.pk]))
    public_id = chat.public_id
    chat.delete()
    rita.delete()
    entry = TranscriptView.objects.get()
    assert (entry.viewer, entry.conversation, entry.viewer_username, entry.conversation_public_id) == (
        None, None, "rita", public_id
    )


def test_reviewer_group_has_exactly_its_permissions():
    granted = set(Group.objects.get(name="reviewer").permissions.values_list("content_type__app_label", "codename"))
    assert granted == {
        ("chat", "view_conversation"), ("chat", "view_message"), ("chat", "view_attachment"),
        ("chat", "view_feedback"), ("chat", "view_reviewmark"), ("chat", "add_reviewmark"),
    }


# --- The first admin, created by the release phase ---------------------------------------------------------------


@pytest.fixture
def admin_env(monkeypatch):
    def set_env(**values):
        for name in ("USERNAME", "PASSWORD", "EMAIL"):
            monkeypatch.delenv(f"DJANGO_SUPERUSER_{name}", raising=False)
        for name, value in values.items():
            monkeypatch.setenv(f"DJANGO_SUPERUSER_{name.upper()}", value)

    return set_env


def test_ensure_superuser_creates_the_first_admin_once(admin_env, capsys, django_user_model):
    admin_env(username="boss", password="a-long-unusual-passphrase-42", email="boss@example.com")
    call_command("ensure_superuser")
    user = django_user_model.objects.get(username="boss")
    assert user.is_superuser and user.is_staff and user.email == "boss@example.com"
    assert user.check_password("a-long-unusual-passphrase-42")

    admin_env(username="boss", password="another-password-entirely-77")
    call_command("ensure_superuser")
    user.refresh_from_db()
    assert user.check_password("a-long-unusual-passphrase-42")
    out = capsys.readouterr()
    assert "created superuser 'boss'" in out.out and "already exists" in out.out
    assert "passphrase" not in out.out + out.err and "another-password" not in out.out + out.err


def test_ensure_superuser_without_a_username_does_nothing(admin_env, django_user_model):
    admin_env()
    call_command("ensure_superuser")
    assert not django_user_model.objects.exists()


def test_ensure_superuser_keeps_an_existing_user_even_without_a_password(admin_env, alice):
    admin_env(username="alice")
    call_command("ensure_superuser")
    alice.refresh_from_db()
    assert not alice.is_superuser


@pytest.mark.parametrize("password", ["", "qwertyuiop", "x7"])
def test_ensure_superuser_refuses_a_missing_or_weak_password(admin_env, django_user_model, password):
    admin_env(username="boss", password=password)
    with pytest.raises(CommandError) as failure:
        call_command("ensure_superuser")
    assert not django_user_model.objects.exists()
    if password:
        assert password not in str(failure.value)
