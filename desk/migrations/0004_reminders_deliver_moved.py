"""The lead's reminder task moved from desk.tasks to desk.services: tasks
still queued under the old path run under the new one."""

from django.db import migrations

OLD, NEW = "desk.tasks.reminders_deliver", "desk.services.reminders_deliver"


def forward(apps, schema_editor):
    apps.get_model("django_tasks_database", "DBTaskResult").objects.filter(task_path=OLD).update(task_path=NEW)


def backward(apps, schema_editor):
    apps.get_model("django_tasks_database", "DBTaskResult").objects.filter(task_path=NEW).update(task_path=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("desk", "0003_reminder_delivered"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(forward, backward)]
